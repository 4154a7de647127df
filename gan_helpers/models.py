"""The lab's three networks, layer for layer as the exercise's points 1, 2 and 11 give them.

Every network is built from layer modules, so ``print(model)`` reads like the
spec. The discriminator returns a probability; for training, the losses use
:meth:`Discriminator.logits` instead (see its docstring for why).
"""

from __future__ import annotations

import torch
from torch import nn

LATENT_DIM = 128


class Discriminator(nn.Module):
    """Point 1: three strided conv blocks, dropout, one linear unit, sigmoid.

    ``forward`` returns the probability that the input is a real photo.
    Training uses :meth:`logits`, the value just before the sigmoid, with
    ``binary_cross_entropy_with_logits``: that is the same function as
    ``BCE(sigmoid(l), y)`` but computed as ``softplus`` terms, so it neither
    saturates to ``log(0)`` when the sigmoid rounds to 0 or 1 in float32 nor
    loses the gradient there.
    """

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            # (B, 3, 64, 64) -> (B, 64, 32, 32)
            nn.Conv2d(3, 64, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.2),
            # (B, 64, 32, 32) -> (B, 128, 16, 16)
            nn.Conv2d(64, 128, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            # (B, 128, 16, 16) -> (B, 128, 8, 8)
            nn.Conv2d(128, 128, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 128, 8, 8) -> (B, 8192)
            nn.Dropout(dropout),
            nn.Linear(128 * 8 * 8, 1),  # (B, 8192) -> (B, 1)
        )
        self.sigmoid = nn.Sigmoid()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores, shape (B,): what the losses are computed from."""
        return self.classifier(self.features(images)).squeeze(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Probability that each image is real, shape (B,)."""
        return self.sigmoid(self.logits(images))


def latent_projection() -> nn.Sequential:
    """The generators' common start (points 2 and 11): a purely linear layer, reshaped to 8x8 maps."""
    return nn.Sequential(
        nn.Linear(LATENT_DIM, 128 * 8 * 8),  # (B, 128) -> (B, 8192), no activation
        nn.Unflatten(1, (128, 8, 8)),  # -> (B, 128, 8, 8)
    )


class TransposedConvGenerator(nn.Module):
    """Point 2: linear projection, three transposed convolutions, 5x5 conv, sigmoid.

    The spec names no batch normalisation here, so there is none.
    """

    latent_dim = LATENT_DIM

    def __init__(self) -> None:
        super().__init__()
        self.project = latent_projection()
        self.upsample = nn.Sequential(
            # (B, 128, 8, 8) -> (B, 128, 16, 16)
            nn.ConvTranspose2d(128, 128, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            # (B, 128, 16, 16) -> (B, 256, 32, 32)
            nn.ConvTranspose2d(128, 256, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            # (B, 256, 32, 32) -> (B, 512, 64, 64)
            nn.ConvTranspose2d(256, 512, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.to_rgb = nn.Sequential(
            nn.Conv2d(512, 3, kernel_size=5, padding=2),  # (B, 512, 64, 64) -> (B, 3, 64, 64)
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images with pixels in [0, 1], shape (B, 3, 64, 64), from latents (B, 128)."""
        return self.to_rgb(self.upsample(self.project(z)))


def upsampling_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Nearest x2, then two 3x3 convs each with batch norm and LeakyReLU 0.2 (point 11)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2),
    )


class UpsamplingGenerator(nn.Module):
    """Point 11: the same start as point 2, then upsampling + ordinary convolutions.

    Nearest-neighbour upsampling followed by 3x3 convolutions avoids the
    uneven kernel overlap that gives transposed convolutions their grid
    ("tartan") artifacts.
    """

    latent_dim = LATENT_DIM

    def __init__(self) -> None:
        super().__init__()
        self.project = latent_projection()
        self.upsample = nn.Sequential(
            upsampling_block(128, 64),  # (B, 128, 8, 8) -> (B, 64, 16, 16)
            upsampling_block(64, 128),  # (B, 64, 16, 16) -> (B, 128, 32, 32)
            upsampling_block(128, 256),  # (B, 128, 32, 32) -> (B, 256, 64, 64)
        )
        self.to_rgb = nn.Sequential(
            nn.Conv2d(256, 3, kernel_size=5, padding=2),  # (B, 256, 64, 64) -> (B, 3, 64, 64)
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images with pixels in [0, 1], shape (B, 3, 64, 64), from latents (B, 128)."""
        return self.to_rgb(self.upsample(self.project(z)))


GENERATORS = {
    "transposed": TransposedConvGenerator,
    "upsampling": UpsamplingGenerator,
}


def build_generator(kind: str) -> nn.Module:
    """The generator named by ``kind`` ('transposed' or 'upsampling')."""
    try:
        return GENERATORS[kind]()
    except KeyError:
        raise ValueError(f"unknown generator {kind!r}; choose one of {sorted(GENERATORS)}") from None


def generate(G: nn.Module, z: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Images (N, 3, 64, 64) in fp32 on the CPU from latents (N, 128): the one way the lab samples G.

    Eval mode (batch norm uses its running statistics, so an image depends on
    its own vector only) and no gradients; G's mode is restored afterwards.
    """
    device = next(G.parameters()).device
    was_training = G.training
    try:
        G.eval()
        with torch.no_grad():
            z = z.reshape(-1, G.latent_dim)
            return torch.cat([G(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)])
    finally:
        G.train(was_training)


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """A table of every leaf layer with its output shape and parameter count.

    ``input_shape`` excludes the batch dimension, e.g. ``(128,)`` for a
    generator or ``(3, 64, 64)`` for the discriminator. Runs one forward
    pass on a batch of two in eval mode and leaves the model as it was.
    """
    rows: list[tuple[str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def record(mod, _inputs, output, name=name):
                n_params = sum(p.numel() for p in mod.parameters())
                rows.append((f"{name} ({type(mod).__name__})", str(tuple(output.shape[1:])), n_params))

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(2, *input_shape, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    width = max(len(r[0]) for r in rows)
    lines = [f"{'layer':<{width}}  {'output shape':<16} {'parameters':>10}"]
    lines += [f"{layer:<{width}}  {shape:<16} {n:>10,}" for layer, shape, n in rows]
    total = sum(p.numel() for p in model.parameters())
    lines.append(f"{'total':<{width}}  {'':<16} {total:>10,}")
    return "\n".join(lines)
