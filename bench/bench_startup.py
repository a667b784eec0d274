"""The fixed cost of a drill run: `drill run --dry-run` on one feature, next to a trivial pytest run.

    .venv/bin/python bench/bench_startup.py [--repeat 15] [FEATURE]

A dry run starts no stack, so its wall time is what every `drill run` costs before (and after) the
drills themselves: Python and pytest start-up, the step library, collection, the journal and the
reports. Prints the median, min and max of each command and of `import harness.cli` (what
`drill --help` pays). Target (issue "Fast, trustworthy runs"): the dry run's median <= 0.5 s.
Needs no lock (nothing is started), but a busy machine inflates every figure: compare the rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# as a user runs it: bytecode caches on (some shells and CI set PYTHONDONTWRITEBYTECODE, which makes
# every run compile every module again), and one warm-up run first so the caches exist
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], cwd: Path, repeat: int) -> list[float]:
    out = []
    subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, env=ENV)  # warm-up
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, env=ENV)
        out.append(time.perf_counter() - started)
        if proc.returncode not in (0,):
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return out


def row(label: str, times: list[float]) -> None:
    print(f"{label:58} median {statistics.median(times):6.3f}s  min {min(times):6.3f}s  max {max(times):6.3f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("feature", nargs="?", default="features/kill_switch.feature")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    (tmp / "test_trivial.py").write_text("def test_trivial():\n    assert True\n")
    (tmp / "pytest.ini").write_text("[pytest]\n")
    pytest_bin, drill = str(BIN / "pytest"), str(BIN / "drill")
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"], ROOT),
        ("import harness.cli (drill --help pays this)", [sys.executable, "-c", "import harness.cli"], ROOT),
        ("pytest: one trivial test (every installed plugin)", [pytest_bin, "-q", "-p", "no:cacheprovider"], tmp),
        (f"drill run --dry-run {args.feature}",
         [drill, "run", "--dry-run", args.feature, "--report", str(tmp / "report")], ROOT),
    ]
    results = {}
    for label, argv, cwd in rows:
        results[label] = timed(argv, cwd, args.repeat)
        row(label, results[label])
    dry = statistics.median(results[rows[-1][0]])
    trivial = statistics.median(results[rows[2][0]])
    print(f"\ndry run median {dry:.3f}s = {dry / trivial:.2f}x a trivial pytest run; target <= 0.5 s: "
          f"{'met' if dry <= 0.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
