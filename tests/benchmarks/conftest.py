"""The benchmark tests reuse the scripted generator and critic of the ``gcr bench`` tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
