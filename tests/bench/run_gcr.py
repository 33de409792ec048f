"""Run the ``gcr`` console command with the scripted ``pixel`` generator registered (for subprocess tests).

Usage: ``python tests/bench/run_gcr.py bench PROMPTS --generator-kind pixel --generator 'pixel?hold=0.1' ...``
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from benchkit import PixelGenerator  # noqa: E402

from gcr.cli.app import main  # noqa: E402
from gcr.generators.registry import register_generator  # noqa: E402

if __name__ == "__main__":
    register_generator("pixel", PixelGenerator, replace=True)
    main()
