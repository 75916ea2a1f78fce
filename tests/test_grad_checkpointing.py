"""Activation checkpointing is a property of the blocks: with it, every family's gradients equal those without
(drop-path on: the recomputation replays the same random draws), and blocks really are recomputed."""

import pytest
import torch
from tiny import tiny_overrides

import vitkit
from vitkit.errors import ConfigError
from vitkit.layers.checkpointing import GradCheckpointing

FAMILIES = ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224",
            "vivit_base_16x2_factorised_encoder", "vivit_base_16x2_factorised_dot_product",
            "timesformer_base_8x224_divided_space_time", "timesformer_base_8x224_local_global", "mvitv2_tiny",
            "mvit_base_16x4"]


def _grads(model, x, y, seed=1):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", FAMILIES)
def test_gradients_equal_with_and_without_checkpointing(name):
    model = vitkit.create_model(name, **tiny_overrides(name), drop_path_rate=0.2).train()
    x, y = torch.randn(2, *model.input_shape()), torch.tensor([0, 1])
    plain = _grads(model, x, y)
    blocks = [m for m in model.modules() if isinstance(m, GradCheckpointing)]
    assert blocks
    calls = []

    def counted(forward):
        def run(*args, **kwargs):
            calls.append(1)
            return forward(*args, **kwargs)
        return run

    for b in blocks:
        b.forward = counted(b.forward)
    model.set_grad_checkpointing(True)
    checkpointed = _grads(model, x, y)
    assert len(calls) == 2 * len(blocks)  # each block ran again in the backward pass
    assert plain.keys() == checkpointed.keys() and len(plain) == len(list(model.parameters()))
    for k in plain:
        torch.testing.assert_close(checkpointed[k], plain[k], rtol=0, atol=1e-6, msg=k)
    model.set_grad_checkpointing(False)
    with torch.no_grad():  # eval / no-grad paths never checkpoint
        model.eval()(x)


def test_a_model_without_transformer_blocks_refuses():
    with pytest.raises(ConfigError, match="has no checkpointable blocks"):
        vitkit.create_model("resnet_tiny_cifar", **tiny_overrides("resnet_tiny_cifar")).set_grad_checkpointing(True)


def test_training_with_grad_checkpointing_ends_with_the_same_weights(tmp_path):
    from vitkit.train.run import TrainConfig, train

    common = dict(model="deit_tiny_patch16_224", epochs=1, batch_size=8, limit=16, progress=False,
                  overrides=dict(img_size=16, patch_size=8, embed_dim=24, depth=2, num_heads=2, drop_path_rate=0.2))
    a = train(TrainConfig(out=str(tmp_path / "a"), **common)).model.state_dict()
    b = train(TrainConfig(out=str(tmp_path / "b"), grad_checkpointing=True, **common)).model.state_dict()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)
