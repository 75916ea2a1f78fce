"""Every ratio benchmark under each processor kind this machine can present: its own (`native`) and AVX2, the
latter by narrowing the process (ATEN_CPU_CAPABILITY=avx2 for PyTorch's kernels, ONEDNN_MAX_CPU_ISA=AVX2 for
oneDNN, MKL_ENABLE_INSTRUCTIONS=AVX2 for MKL), as an AVX2-only CPU of the same cores would run. Default
settings (the routes vitkit chooses for the kind), fp32. Prints one markdown table per kind — bench, mode,
batch, ratio (vitkit / reference, ratio of medians over alternating steps), the 1-minute load average when the
row was taken — and writes the rows as JSON lines to --out.

    .venv/bin/python benchmarks/kinds.py --steps 6 --out /tmp/kinds.jsonl bench_vit bench_swin
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
NARROW = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}
DEFAULT = ["bench_vit", "bench_swin", "bench_cvt", "bench_timesformer", "bench_vivit", "bench_mvitv2_tiny", "bench_mvit",
           "bench_fast"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("benches", nargs="*", default=DEFAULT, help=f"scripts in benchmarks/ (default: {' '.join(DEFAULT)})")
    p.add_argument("--kinds", default="native,avx2", help="comma-separated: native (this CPU as it is), avx2")
    p.add_argument("--steps", type=int, default=6, help="timed steps per side (ratio of medians)")
    p.add_argument("--modes", default="infer,train")
    p.add_argument("--out", default="benchmark-kinds.jsonl", help="JSON lines, one per result row (appended)")
    args = p.parse_args(argv)
    failed = 0
    for kind in args.kinds.split(","):
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), **NARROW.get(kind, {})}
        env.pop("VITKIT_ONEDNN_LINEAR", None)
        out = Path(args.out)
        start = len(out.read_text().splitlines()) if out.exists() else 0
        for bench in args.benches:
            script = HERE / (bench if bench.endswith(".py") else f"{bench}.py")
            failed |= subprocess.call([sys.executable, str(script), "--steps", str(args.steps), "--modes", args.modes,
                                       "--json", args.out], env=env)
        rows = [json.loads(line) for line in out.read_text().splitlines()[start:]]
        if rows:
            print(f"\n### {kind}: {rows[0]['cpu']}, {rows[0]['kind']}, torch {rows[0]['torch']}, "
                  f"{rows[0]['threads']} threads\n\n| bench | mode | batch | vitkit / ref | load |\n|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['bench']} | {r['mode']} | {r['batch']} | {r['ratio']:.2f} | {r['load']:.1f} |")
    return failed


if __name__ == "__main__":
    sys.exit(main())
