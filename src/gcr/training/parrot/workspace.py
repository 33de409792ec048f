"""The PARROT work folder: where each phase reads and writes, and which data it belongs to.

::

    WORKDIR/
      parrot.json              which preference set the folder belongs to
      anchored.jsonl           phase 1: one record per teacher call (raw answer kept)
      predicted.jsonl          phase 2: one record per predictor call
      kept.jsonl               phase 2: the rationales that passed every check
      filter_report.json       phase 2: survival overall, per check, per task, per dimension
      projected.jsonl          projection: one record per teacher call (raw answer kept)
      pointwise.jsonl          projection: pointwise critiques whose scores keep the pair's order
      projection_report.json   projection: counts, violations
      dataset/                 SFT data: train.jsonl, val.jsonl, hf/ (datasets save_to_disk)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gcr.errors import RunError
from gcr.io import write_text_atomic
from gcr.training.parrot.data import PreferenceSet, load_preferences, preferences_path

MANIFEST = "parrot.json"


@dataclass(frozen=True)
class ParrotWorkspace:
    """Paths of one PARROT work folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def anchored(self) -> Path:
        return self.root / "anchored.jsonl"

    @property
    def predicted(self) -> Path:
        return self.root / "predicted.jsonl"

    @property
    def kept(self) -> Path:
        return self.root / "kept.jsonl"

    @property
    def filter_report(self) -> Path:
        return self.root / "filter_report.json"

    @property
    def projected(self) -> Path:
        return self.root / "projected.jsonl"

    @property
    def pointwise(self) -> Path:
        return self.root / "pointwise.jsonl"

    @property
    def projection_report(self) -> Path:
        return self.root / "projection_report.json"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @classmethod
    def create(cls, root: str | Path, preferences: str | Path) -> ParrotWorkspace:
        """Open ``root`` for ``preferences``, creating it; refuse a folder made for other data."""
        ws = cls(Path(root).expanduser().resolve())
        prefs = preferences_path(preferences).expanduser().resolve()
        if ws.manifest.is_file():
            recorded = ws._recorded_preferences()
            if recorded != prefs:
                raise RunError(
                    f"work folder {ws.root} belongs to {recorded}, not {prefs}; use another --workdir"
                )
            return ws
        ws.root.mkdir(parents=True, exist_ok=True)
        manifest = {"preferences": str(prefs), "created": datetime.now(UTC).isoformat(timespec="seconds")}
        write_text_atomic(ws.manifest, json.dumps(manifest, indent=2) + "\n", durable=True)
        return ws

    @classmethod
    def open(cls, root: str | Path) -> ParrotWorkspace:
        """Open an existing work folder (made by :meth:`create`, e.g. by ``parrot anchor``)."""
        ws = cls(Path(root).expanduser().resolve())
        if not ws.manifest.is_file():
            raise RunError(
                f"{ws.root} is not a PARROT work folder (no {MANIFEST}); start with `gcr train parrot anchor`"
            )
        return ws

    def _recorded_preferences(self) -> Path:
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
            return Path(data["preferences"])
        except (OSError, ValueError, KeyError, TypeError):
            raise RunError(f"{self.manifest} is unreadable; remove it or use another --workdir") from None

    def preferences(self) -> PreferenceSet:
        return load_preferences(self._recorded_preferences())

    def require(self, path: Path, phase: str) -> Path:
        if not path.is_file():
            raise RunError(f"{path} does not exist yet: run `gcr train parrot {phase}` first")
        return path
