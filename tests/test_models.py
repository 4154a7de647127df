"""The networks are exactly the spec's (points 1, 2, 11)."""

import pytest
import torch
from torch import nn

from gan_helpers.models import Discriminator, TransposedConvGenerator, UpsamplingGenerator, build_generator, summary


def layers(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def test_discriminator_shapes_and_output_range():
    D = Discriminator().eval()
    x = torch.rand(4, 3, 64, 64)
    p = D(x)
    assert p.shape == (4,)
    assert ((p > 0) & (p < 1)).all()
    assert torch.allclose(torch.sigmoid(D.logits(x)), p)


def test_discriminator_layers_follow_point_1():
    D = Discriminator()
    convs = layers(D, nn.Conv2d)
    assert [c.out_channels for c in convs] == [64, 128, 128]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    assert len(layers(D, nn.BatchNorm2d)) == 3
    assert all(a.negative_slope == 0.2 for a in layers(D, nn.LeakyReLU))
    assert not layers(D, nn.MaxPool2d)
    (dropout,) = layers(D, nn.Dropout)
    assert dropout.p == pytest.approx(0.2)
    (linear,) = layers(D, nn.Linear)
    assert (linear.in_features, linear.out_features) == (8192, 1)
    features = D.features(torch.zeros(2, 3, 64, 64))
    assert features.shape == (2, 128, 8, 8)


def test_transposed_generator_follows_point_2():
    G = TransposedConvGenerator()
    (linear,) = layers(G, nn.Linear)
    assert (linear.in_features, linear.out_features) == (128, 8192)
    tconvs = layers(G, nn.ConvTranspose2d)
    assert [t.out_channels for t in tconvs] == [128, 256, 512]
    assert all(t.kernel_size == (4, 4) and t.stride == (2, 2) and t.padding == (1, 1) for t in tconvs)
    assert not layers(G, nn.BatchNorm2d), "the spec names no batch norm in this generator"
    (final,) = layers(G, nn.Conv2d)
    assert (final.out_channels, final.kernel_size, final.stride, final.padding) == (3, (5, 5), (1, 1), (2, 2))
    assert isinstance(G.project[0], nn.Linear) and isinstance(G.project[1], nn.Unflatten), "the projection is purely linear"
    assert isinstance(list(G.modules())[-1], nn.Sigmoid)


def test_upsampling_generator_follows_point_11():
    G = UpsamplingGenerator()
    ups = layers(G, nn.Upsample)
    assert len(ups) == 3 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    convs = layers(G, nn.Conv2d)
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 3]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs[:-1])
    assert convs[-1].kernel_size == (5, 5)
    assert len(layers(G, nn.BatchNorm2d)) == 6
    assert not layers(G, nn.ConvTranspose2d)
    h = G.upsample(G.project(torch.zeros(2, 128)))
    assert h.shape == (2, 256, 64, 64)


@pytest.mark.parametrize("kind", ["transposed", "upsampling"])
def test_generators_make_images_in_unit_range(kind):
    G = build_generator(kind).eval()
    images = G(torch.randn(3, 128))
    assert images.shape == (3, 3, 64, 64)
    assert images.min() >= 0 and images.max() <= 1


def test_unknown_generator_is_an_error():
    with pytest.raises(ValueError, match="unknown generator"):
        build_generator("diffusion")


def test_summary_lists_layers_and_total_and_restores_mode():
    D = Discriminator().train()
    table = summary(D, (3, 64, 64))
    assert "features.0 (Conv2d)" in table and "(64, 32, 32)" in table
    assert f"{sum(p.numel() for p in D.parameters()):,}" in table.splitlines()[-1]
    assert D.training
