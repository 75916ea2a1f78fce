"""Run every benchmarks/bench_*.py in turn (`make bench`)."""

import pathlib
import subprocess
import sys

here = pathlib.Path(__file__).parent
failed = 0
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    failed |= subprocess.call([sys.executable, str(script), *sys.argv[1:]])
sys.exit(failed)
