"""How long a newcomer waits for ``gcr demo``: wall time of the whole command, cold and warm.

"Cold" builds the tiny random generator first (a fresh ``--models`` folder); "warm"
reuses it, as every later ``gcr demo`` does. Each run is a separate process started
the way a user starts it (``python -m gcr demo``) with stdout and stderr piped, so
interpreter start-up, imports, the scripted critic server, the refine rounds and the
HTML report are all counted. The goal is well under a minute on two CPU cores.

Run: ``python benchmarks/demo_wall_time.py [--repeats 2]``. No assertions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(work: Path, models: Path, index: int) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gcr", "demo", "--out", str(work / f"run-{index}"), "--models", str(models)],
        cwd=work, capture_output=True, text=True, env=env,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"gcr demo failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="Warm runs after the cold one.")
    args = parser.parse_args()
    print(f"python {platform.python_version()} · {os.cpu_count()} CPUs visible · {platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = work / "models"
        cold = run_demo(work, models, 0)
        warm = [run_demo(work, models, i + 1) for i in range(args.repeats)]
    print(f"gcr demo, cold (builds the tiny generator): {cold:6.1f} s")
    print(f"gcr demo, warm (median of {len(warm)}):          {statistics.median(warm):6.1f} s")


if __name__ == "__main__":
    main()
