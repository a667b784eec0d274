"""The docker backend's costs: image build (cold and cached), stack up to all-healthy, and one drill's
wall time on both backends.

Run: .venv/bin/python bench/bench_docker.py [--rounds 3] [--cold] [--quarter Q1]
  --cold   also time a cold image build: removes the drill-* images and the rootfs/.deb cache in
           .tools/images first (several minutes; the cached build is always timed)
Prints figures and asserts nothing. Needs a Docker engine (scripts/docker-setup.sh).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_stack import time_up_down  # noqa: I001 - sibling script, run from bench/ or the project root

from harness.backends.docker import DockerBackend, engine_available

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("drill-mockstack:local", "drill-toxiproxy:local", "drill-prometheus:local", "drill-alertmanager:local",
          "drill-python:bookworm", "drill-base:bookworm")


def timed(argv: list[str]) -> tuple[float, int]:
    t0 = time.monotonic()
    rc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode
    return time.monotonic() - t0, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--quarter", default="Q1")
    args = parser.parse_args()
    if not engine_available():
        sys.exit("no Docker engine: run scripts/docker-setup.sh")

    if args.cold:
        subprocess.run(["docker", "image", "rm", "-f", *IMAGES], cwd=ROOT, capture_output=True, check=False)
        shutil.rmtree(ROOT / ".tools" / "images", ignore_errors=True)
        took, rc = timed(["bash", "scripts/build-images.sh"])
        print(f"image build, cold (debootstrap + builds): {took:.1f}s (exit {rc})")
    took, rc = timed(["bash", "scripts/build-images.sh"])
    print(f"image build, cached (nothing changed): {took:.1f}s (exit {rc})")

    time_up_down(DockerBackend, args.rounds, "docker stack")

    drill = str(Path(sys.executable).parent / "drill")
    for backend_name in ("process", "docker"):
        with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmp:
            took, rc = timed([drill, "run", "--backend", backend_name, "--quarter", args.quarter, "--report", tmp])
        print(f"drill run --quarter {args.quarter} on {backend_name}: {took:.1f}s wall (exit {rc})")


if __name__ == "__main__":
    main()
