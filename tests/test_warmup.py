"""Point 6: only the first layer learns, and the pseudo-loss falls."""

import torch

from gan_helpers.warmup import first_layer_steps, pseudo_loss, tiny_model


def test_first_layer_steps_lower_loss_and_freeze_second_layer():
    torch.manual_seed(0)
    model = tiny_model()
    batch = torch.randn(4, 3)
    first_before = [p.clone() for p in model[0].parameters()]
    second_before = [p.clone() for p in model[1].parameters()]
    losses = first_layer_steps(model, batch, steps=10, lr=0.01)
    assert len(losses) == 10
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert pseudo_loss(model(batch)).item() < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(second_before, model[1].parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(first_before, model[0].parameters()))
    assert all(p.grad is None for p in model.parameters())
