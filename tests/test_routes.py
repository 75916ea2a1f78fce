"""vitkit.routes and train.autotune: every speed default follows the processor, with the processor mocked
(AVX2 / AVX-512 / AVX-512 BF16 / AMX / GPUs), and narrowing a real process with the environment variables
changes what it detects."""

import json
import os
import subprocess
import sys

import pytest
import torch

import vitkit.routes as R
from vitkit.routes import Candidate, Processor, inference_precision, linear_route, training_precision
from vitkit.train import autotune
from vitkit.train.run import TrainConfig, train

AVX2 = Processor("cpu", "x86_64", "AVX2", False, False, "AMD EPYC 7B12", "amd")
AVX512 = Processor("cpu", "x86_64", "AVX512", False, False, "Intel Xeon Platinum 8175M", "intel")
AVX512_BF16 = Processor("cpu", "x86_64", "AVX512", True, False, "AMD EPYC 9B14", "amd")
AMX = Processor("cpu", "x86_64", "AVX512", True, True, "Intel Xeon Platinum 8481C", "intel")
AVX512_UNKNOWN = Processor("cpu", "x86_64", "AVX512", False, False, "", "")
ARM = Processor("cpu", "aarch64", "DEFAULT", False, False, "Neoverse-V1")
GPU = Processor("cuda", "x86_64", "", True, False, "NVIDIA H100")
OLD_GPU = Processor("cuda", "x86_64", "", False, False, "Tesla V100")


@pytest.mark.parametrize("proc, kind", [(AVX2, "avx2"), (AVX512, "avx512"), (AVX512_BF16, "avx512-bf16"),
                                        (AMX, "amx"), (ARM, "cpu"), (GPU, "cuda")])
def test_kind(proc, kind):
    assert proc.kind == kind and kind in R.KINDS


@pytest.mark.parametrize("proc, infer, train_", [
    (AVX2, True, False),          # README, speed: the route wins inference, loses training on AVX2
    (AVX512, True, False),        # Intel: MKL runs AVX-512 kernels, the route loses training (AMX Xeon 0.82-0.93)
    (AVX512_BF16, True, True),    # AMD: MKL skips AVX-512, the route wins training (EPYC 1.1-1.3)
    (AMX, True, False),
    (AVX512_UNKNOWN, True, True),
    (ARM, False, False),          # not x86: PyTorch's own choice
    (GPU, False, False),
])
def test_linear_route_by_processor(proc, infer, train_):
    assert linear_route(proc, training=False).value is infer
    assert linear_route(proc, training=True).value is train_


@pytest.mark.parametrize("proc, want", [
    (AVX2, "fp32"), (AVX512, "fp32"), (ARM, "fp32"),   # bf16 would be emulated
    (AVX512_BF16, None), (AMX, None),                  # no safe rule: timed on the run's shapes
    (GPU, "bf16"), (OLD_GPU, "fp32"),
])
def test_training_precision_rule(proc, want):
    rule = training_precision(proc)
    assert (rule.value if rule else None) == want


@pytest.mark.parametrize("proc, want", [(AVX2, "fp32"), (AVX512, "fp32"), (AVX512_BF16, "bf16"), (AMX, "bf16"),
                                        (GPU, "bf16")])
def test_inference_precision_rule(proc, want):
    assert inference_precision(proc).value == want


def test_candidates_follow_the_linear_rule():
    assert [c.label for c in R.training_candidates(AVX512_BF16)] == ["fp32 (default BLAS)", "fp32 (oneDNN)", "bf16"]
    assert [c.label for c in R.training_candidates(AMX)] == ["fp32 (default BLAS)", "bf16"]


@pytest.mark.parametrize("line, vendor", [("GenuineIntel", "intel"), ("AuthenticAMD", "amd"), ("HygonGenuine", "")])
def test_vendor_is_read(monkeypatch, line, vendor):
    monkeypatch.setattr(R, "_cpuinfo", lambda key: line if key == "vendor_id" else "")
    assert R._vendor() == vendor


@pytest.mark.parametrize("value, bf16, amx", [(None, True, True), ("AVX2", False, False), ("avx512_core", False, False),
                                              ("AVX512_CORE_BF16", True, False), ("avx512_core_amx", True, True)])
def test_onednn_narrowing_is_read(monkeypatch, value, bf16, amx):
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if value is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", value)
    assert R._onednn_isa_allows("BF16") is bf16 and R._onednn_isa_allows("AMX") is amx


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"), reason="needs an x86 CPU")
def test_a_narrowed_process_detects_avx2():
    """The variables README's speed section uses to measure the other processor kind are what detection sees."""
    code = ("import vitkit.routes as R, vitkit.layers as L; p = R.processor(); c = L.layer_config(); "
            "print(p.kind, p.native_bf16, c.onednn_linear_infer, c.onednn_linear_train)")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    env.pop("VITKIT_ONEDNN_LINEAR", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["avx2", "False", "True", "False"]


# --- measured choices -----------------------------------------------------------------------------------------
@pytest.fixture
def clock(monkeypatch, tmp_path):
    """A fake clock that each fake step advances by its candidate's cost; the cache in tmp_path."""
    monkeypatch.setenv("VITKIT_CACHE_DIR", str(tmp_path))
    now = [0.0]
    monkeypatch.setattr(R.time, "perf_counter", lambda: now[0])
    return now


def test_measure_picks_the_fastest_and_caches_it(clock, tmp_path):
    cands = R.training_candidates(AVX512_BF16)
    cost = {"fp32 (default BLAS)": 0.15, "fp32 (oneDNN)": 0.19, "bf16": 0.20}   # the main job's student, measured
    calls = []

    def step(c: Candidate):
        calls.append(c.label)
        clock[0] += cost[c.label]
    got = R.measure(cands, step, "key-a")
    assert got.best == Candidate("fp32", False) and not got.cached
    assert got.ms_per_step == {"fp32 (default BLAS)": 150.0, "fp32 (oneDNN)": 190.0, "bf16": 200.0}
    assert len(calls) == 3 * (1 + 3)
    again = R.measure(cands, step, "key-a")       # the same machine and run: read back, nothing timed
    assert again.cached and again.best == got.best and len(calls) == 12
    cost["bf16"] = 0.05                           # another run (key): timed anew
    assert R.measure(cands, step, "key-b").best == Candidate("bf16", True)
    assert len(json.loads((tmp_path / "routes.json").read_text())) == 2


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def _choose(proc, requested="auto", steps=10_000, model=None):
    return autotune.choose(requested, model or _Tiny(), torch.nn.CrossEntropyLoss(), (4,), torch.device("cpu"), 2,
                           steps, {"model": "tiny"}, proc=proc)


def test_rules_decide_without_timing(monkeypatch):
    monkeypatch.setattr(autotune, "measure", lambda *a, **k: pytest.fail("timed where a rule decides"))
    avx2 = _choose(AVX2)
    assert (avx2.precision, avx2.onednn_linear) == ("fp32", False)
    assert "emulated" in avx2.lines[1] and "default BLAS" in avx2.lines[2]
    assert "under autocast" in _choose(AVX2, requested="bf16").lines[2]
    short = _choose(AVX512_BF16, steps=autotune.MEASURE_MIN_STEPS - 1)
    assert short.precision == "fp32" and "too short" in short.lines[1]
    explicit = _choose(AVX2, requested="bf16")
    assert explicit.precision == "bf16" and "emulated" in explicit.lines[1]
    assert _choose(AVX512_BF16, requested="fp32").onednn_linear is True
    assert _choose(AMX, requested="fp32").onednn_linear is False


def test_long_runs_on_native_bf16_are_timed(monkeypatch, clock):
    cost = {"fp32 (default BLAS)": 0.3, "fp32 (oneDNN)": 0.2, "bf16": 0.1}
    real = autotune._timed_step

    def timed(*args):
        step = real(*args)

        def fake(c):
            step(c)                   # a real step of the tiny model under the candidate's routes
            clock[0] += cost[c.label]
        return fake
    monkeypatch.setattr(autotune, "_timed_step", timed)
    model = _Tiny()
    state = torch.random.get_rng_state()
    got = _choose(AVX512_BF16, model=model)
    assert got.precision == "bf16" and "bf16 100 ms" in got.lines[1]
    assert torch.equal(torch.random.get_rng_state(), state)  # the timing leaves the random state as it was


def test_a_run_reports_its_routes_in_config_yaml(tmp_path):
    import yaml

    cfg = TrainConfig(model="vit_tiny_patch16_224", overrides=dict(img_size=16, patch_size=8, depth=1, embed_dim=16,
                      num_heads=2), epochs=1, batch_size=16, limit=32, out=str(tmp_path / "run"), progress=False)
    result = train(cfg)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["precision"] == "auto" and saved["routes"]["precision"] == result.precision == "fp32"
    assert any(line.startswith("processor:") for line in saved["routes"]["why"])
    from vitkit.train.config_file import load_config

    assert "routes" not in load_config(tmp_path / "run" / "config.yaml")  # a record, not a setting


@pytest.mark.parametrize("proc, want", [(AVX2, 64), (AVX512_BF16, 64), (GPU, 0)])
def test_math_attention_rule(proc, want):
    assert R.math_attention_max_tokens(proc).value == want


@pytest.mark.parametrize("tokens, written_out", [(8, True), (64, True), (65, False)])
def test_short_cpu_training_attention_is_written_out_with_sdpas_values(monkeypatch, tokens, written_out):
    """Short sequences recording gradients skip SDPA's kernel on the CPU; values and gradients are SDPA's."""
    import torch.nn.functional as F

    from vitkit.layers import attend, set_layer_config

    real, calls = F.scaled_dot_product_attention, []
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    q, k, v = (torch.randn(3, 2, tokens, 16, requires_grad=True) for _ in range(3))
    bias = torch.zeros(1, 1, tokens, tokens).masked_fill_(torch.rand(tokens, tokens) < 0.2, float("-inf"))
    bias[..., 0] = 0  # every query keeps a key
    with set_layer_config(math_attention_max_tokens=64):
        got = attend(q, k, v, bias)
        assert (not calls) is written_out
        grads = torch.autograd.grad(got.square().sum(), (q, k, v))
        with torch.no_grad():
            attend(q, k, v, bias)          # inference: always SDPA
    want = real(q, k, v, attn_mask=bias)
    want_grads = torch.autograd.grad(want.square().sum(), (q, k, v))
    assert len(calls) == (1 if written_out else 2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
