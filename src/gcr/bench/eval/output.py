"""The output folder of ``gcr eval``: its file names and the settings that bind it.

``results.jsonl`` holds one JSON line per judged pair, kept by
:class:`gcr.io.ResultStore`: appended and flushed after every pair, so a killed
process loses only the pairs in flight (a cut-off last line is dropped by the
rule of :mod:`gcr.io.jsonl`); compacted when a run starts, so failed pairs are
judged again and no pair has two records.

``run.json`` remembers what produced the results (the dataset's name and row
count, layout, mode, critic) so a rerun into the same folder with a different
dataset or settings is refused instead of mixing incompatible results. The
dataset's path is recorded but not compared, so a moved dataset still resumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gcr.errors import RunError
from gcr.io import write_text_atomic

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"

#: Settings that must match between runs sharing an output folder.
_BINDING_KEYS = ("dataset_name", "dataset_rows", "layout", "mode", "critic")


def check_run_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Write ``run.json`` on the first run; on later runs refuse settings that would mix results."""
    path = out_dir / RUN_FILE
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{path} is unreadable ({exc}); delete it or use another --out") from None
        for key in _BINDING_KEYS:
            old, new = previous.get(key), settings.get(key)
            if old is not None and new is not None and old != new:
                raise RunError(
                    f"{out_dir} holds results made with {key}={old!r}, not {new!r};"
                    " use another --out folder or the same settings"
                )
        merged = {**previous, **{k: v for k, v in settings.items() if v is not None}}
    else:
        merged = settings
    write_text_atomic(path, json.dumps(merged, indent=2, sort_keys=True) + "\n", durable=True)
