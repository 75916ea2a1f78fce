"""Speed defaults chosen by what the processor has: every rule in one place.

A *route* is a way of computing the same model that differs only in speed (and, for precision, in rounding):
the oneDNN fp32 `Linear` or PyTorch's default BLAS, bf16 autocast or fp32. Which one is fastest depends on the
processor, so vitkit never fixes one: `processor()` reads what this process may use (honouring the narrowing
variables `ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`), and the rules below map that to a choice with a reason.
Where no rule is safe (training on a CPU with native bf16: bf16 wins on large products and loses on small ones),
`choose_training` times the candidate routes on the run's own model and batch once and caches the winner per
machine (`~/.cache/vitkit/routes.json`; `VITKIT_CACHE_DIR` moves it). An explicit flag always wins.

The figures behind each rule (same-process ratios, `benchmarks/`, per processor kind) are in README's speed
section; `tests/test_routes.py` checks every rule with the processor mocked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .io import write_text

KINDS = ("amx", "avx512-bf16", "avx512", "avx2", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Processor:
    """What a device lets this process use. `isa` is PyTorch's kernel level (`get_cpu_capability`); bf16 and AMX
    count only where the hardware has them and oneDNN is allowed to use them."""

    device: str = "cpu"           # cpu | cuda | mps
    arch: str = "x86_64"          # platform.machine()
    isa: str = "AVX2"             # AVX512 | AVX2 | DEFAULT | ... (CPU only)
    native_bf16: bool = False     # bf16 products in hardware: AVX512-BF16 / AMX on CPUs, bf16 GPUs
    amx: bool = False             # Intel AMX tiles (bf16 products several times AVX-512's)
    name: str = ""                # CPU model or GPU name, for reports
    vendor: str = ""              # "intel" | "amd" | "" (unknown): MKL's kernel choice depends on it

    @property
    def x86(self) -> bool:
        return self.arch.lower() in ("x86_64", "amd64")

    @property
    def kind(self) -> str:
        """One of KINDS: the processor classes the benchmarks report figures for."""
        if self.device != "cpu":
            return self.device
        if not self.x86 or self.isa not in ("AVX2", "AVX512"):
            return "cpu"
        if self.isa == "AVX512":
            return "amx" if self.amx else "avx512-bf16" if self.native_bf16 else "avx512"
        return "avx2"


def _onednn_isa_allows(feature: str) -> bool:
    """Whether ONEDNN_MAX_CPU_ISA (or its old name DNNL_MAX_CPU_ISA) lets oneDNN use `feature` ("BF16" or "AMX")."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    if cap == "ALL" or cap.startswith("AVX10"):
        return True
    return "AMX" in cap if feature == "AMX" else ("BF16" in cap or "AMX" in cap)


def _cpuinfo(key: str) -> str:
    """The first `key` line's value in /proc/cpuinfo (Linux), else ""."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _vendor() -> str:
    text = _cpuinfo("vendor_id") or platform.processor()  # Windows: "... GenuineIntel" / "... AuthenticAMD"
    return "intel" if "GenuineIntel" in text else "amd" if "AuthenticAMD" in text else ""


@functools.cache
def _cpu() -> Processor:
    isa = torch.backends.cpu.get_cpu_capability()
    wide = isa == "AVX512"  # bf16 / AMX kernels sit behind PyTorch's AVX-512 level (ATEN_CPU_CAPABILITY narrows it)
    amx = wide and torch.cpu._is_amx_tile_supported() and _onednn_isa_allows("AMX")
    bf16 = wide and (torch.cpu._is_avx512_bf16_supported() or amx) and _onednn_isa_allows("BF16")
    return Processor("cpu", platform.machine(), isa, bool(bf16), bool(amx), _cpu_name(), _vendor())


def processor(device: torch.device | str = "cpu") -> Processor:
    """What `device` offers this process (cached for the CPU: the narrowing variables are read at start)."""
    device = torch.device(device)
    if device.type == "cuda":
        return Processor("cuda", platform.machine(), "", torch.cuda.is_bf16_supported(), False,
                         torch.cuda.get_device_name(device))
    if device.type == "mps":
        return Processor("mps", platform.machine(), "", False, False, "Apple GPU")
    return _cpu()


# --- the rules ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """One route decision: its value and why (printed at the start of a run and saved in its config.yaml)."""

    value: object
    why: str


def linear_route(proc: Processor, training: bool) -> Choice:
    """oneDNN fp32 `Linear` (True) or PyTorch's default BLAS (False). MKL, PyTorch's fp32 BLAS on x86, skips
    its AVX-512 kernels on AMD processors; oneDNN picks kernels by instruction set. Measured (README, speed):
    inference gains on AVX-512 and AVX2, AMD and Intel alike; training gains on AMD's AVX-512 and loses on AVX2,
    where oneDNN's kernels for the transposed products of the backward are slower than MKL's, and on Intel's
    AVX-512 (AMX Xeon: ViT-S 0.82, Swin-T 0.93, CvT-13 0.89 at batch 8), where MKL runs its AVX-512 kernels."""
    if proc.device != "cpu" or not proc.x86 or proc.isa not in ("AVX2", "AVX512"):
        return Choice(False, "PyTorch's default: the oneDNN route is for x86 CPUs with AVX2 or AVX-512")
    if not training:
        return Choice(True, f"{proc.isa} x86: oneDNN's fp32 products beat the default BLAS in inference")
    if proc.isa == "AVX512" and proc.vendor == "intel":
        return Choice(False, "Intel AVX-512: the default BLAS (MKL) runs AVX-512 kernels here and wins in training")
    if proc.isa == "AVX512":
        return Choice(True, "AVX-512 x86 (not Intel): oneDNN's fp32 products beat the default BLAS (MKL skips its "
                            "AVX-512 kernels) in training at ViT sizes")
    return Choice(False, "AVX2 x86: oneDNN's backward products are slower than the default BLAS's")


def math_attention_max_tokens(proc: Processor) -> Choice:
    """Up to how many keys a CPU attention that records gradients is written out (q·kᵀ, softmax, ·v) instead of
    SDPA's flash kernel, whose backward is built for long sequences: on the short sequences of factorised video
    attention (TimeSformer's 8-frame temporal step), small images and windows, the written-out product's forward
    and backward cost 0.26-0.64x the kernel's in fp32 and 0.17-0.40x in bf16 (AVX2 and AVX-512 alike,
    `benchmarks/bench_attention.py`); from ~200 keys the kernel wins or ties."""
    if proc.device != "cpu":
        return Choice(0, "GPU/MPS: SDPA's fused kernels at every length")
    return Choice(64, "CPU: written out up to 64 keys while training, SDPA's flash kernel beyond")


def training_precision(proc: Processor) -> Choice | None:
    """bf16 or fp32 autocast for training where a rule is safe; None where it must be measured (a CPU with
    native bf16: bf16 halves the products' cost at ViT sizes, while on small models the casts and SDPA's bf16
    backward cost more than they save)."""
    if proc.device == "cuda":
        return Choice("bf16", "GPU with bf16: autocast halves memory traffic") if proc.native_bf16 else \
            Choice("fp32", "GPU without bf16 (fp16 needs --precision fp16 and its loss scaling)")
    if proc.device == "mps":
        return Choice("fp32", "MPS: bf16 autocast is not faster there")
    if not proc.native_bf16:
        return Choice("fp32", f"{proc.kind} CPU: no native bf16, which would be emulated (~10x slower)")
    return None


def inference_precision(proc: Processor) -> Choice:
    """What `optimize_for_inference` runs in: bf16 where products are native, else fp32."""
    if proc.native_bf16:
        return Choice("bf16", f"{proc.kind}: native bf16 products")
    return Choice("fp32", f"{proc.kind}: no native bf16 (it would be emulated)")


def emulated_bf16_warning(proc: Processor, precision: str) -> str | None:
    """The one line an explicit `--precision bf16` gets on a CPU that would emulate it."""
    if precision == "bf16" and proc.device == "cpu" and not proc.native_bf16:
        return (f"--precision bf16 on a CPU without native bf16 ({proc.kind}): it runs emulated, several times "
                "slower than fp32")
    return None


# --- measured choices, cached per machine ---------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    precision: str                # fp32 | bf16
    onednn_linear: bool           # the fp32 linear route while training

    @property
    def label(self) -> str:
        return "bf16" if self.precision == "bf16" else f"fp32 ({'oneDNN' if self.onednn_linear else 'default BLAS'})"


def training_candidates(proc: Processor) -> list[Candidate]:
    """The routes worth timing on a CPU with native bf16 (the only case `training_precision` leaves open)."""
    routes = [Candidate("fp32", False)]
    if linear_route(proc, training=True).value:
        routes.append(Candidate("fp32", True))
    return [*routes, Candidate("bf16", routes[-1].onednn_linear)]  # bf16 products bypass the fp32 route


def _cache_file() -> Path:
    root = os.environ.get("VITKIT_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                             os.path.expanduser("~/.cache"), "vitkit")
    return Path(root) / "routes.json"


def machine_key(proc: Processor) -> str:
    """What makes a timing valid on another run: the processor as this process sees it, torch, threads."""
    return json.dumps({**asdict(proc), "torch": torch.__version__, "threads": torch.get_num_threads()}, sort_keys=True)


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(data: dict) -> None:
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home: the choice is measured again next time, nothing else changes


@dataclass
class Measured:
    best: Candidate
    ms_per_step: dict[str, float] = field(default_factory=dict)   # label -> median ms
    cached: bool = False


def measure(candidates: list[Candidate], step: Callable[[Candidate], None], key: str, *, warmup: int = 1,
            steps: int = 3) -> Measured:
    """The fastest candidate by median step time (`step(candidate)` runs one training step on the run's own
    shapes), read from the cache when this machine has timed `key` before. Steps alternate between
    candidates, so load on a shared machine hits all alike."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    cache = _read_cache()
    hit = cache.get(digest)
    labels = {c.label: c for c in candidates}
    if hit and hit.get("best") in labels:
        return Measured(labels[hit["best"]], hit.get("ms_per_step", {}), cached=True)
    for c in candidates:
        for _ in range(warmup):
            step(c)
    times: dict[str, list[float]] = {c.label: [] for c in candidates}
    for _ in range(steps):
        for c in candidates:
            t0 = time.perf_counter()
            step(c)
            times[c.label].append(time.perf_counter() - t0)
    ms = {label: round(1e3 * statistics.median(t), 2) for label, t in times.items()}
    best = labels[min(ms, key=ms.get)]
    cache[digest] = {"best": best.label, "ms_per_step": ms, "key": key}
    _write_cache(cache)
    return Measured(best, ms)
