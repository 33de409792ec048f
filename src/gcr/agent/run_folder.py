"""The run folder: where one refine run keeps its images, critiques and results.

Layout::

    RUN/
      run.json               how the run was started (for --resume)
      checkpoints.sqlite     LangGraph checkpoints (CLI runs)
      inputs/source-0.png    copies of the source images (editing)
      rounds/r00/c00.png     round 0, candidate 0
      rounds/r00/c00.critique.json   parsed critique
      rounds/r00/c00.critique.txt    the critic's raw answer
      trajectory.jsonl       one line per finished round, with its candidates
      summary.json           best image, its prompt and scores, rewards, stop reason, timings
      report.html            side-by-side report (see gcr.agent.report)

Files are written whole and atomically, so re-running a node (after a resume)
rewrites them with the same content instead of appending duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gcr.agent.state import CandidateRecord, RoundRecord
from gcr.errors import RunError
from gcr.folder_paths import contained_path
from gcr.io import parse_json_line, write_text_atomic


class RunFolder:
    """Paths and writers for one run folder."""

    SETTINGS = "run.json"
    CHECKPOINTS = "checkpoints.sqlite"
    TRAJECTORY = "trajectory.jsonl"
    SUMMARY = "summary.json"
    REPORT = "report.html"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def create(self) -> RunFolder:
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a run folder: choose a folder for the run")
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def resolve(self, path: str | Path) -> Path:
        """A path recorded in the run's state, inside this folder (anything else is refused,
        see :func:`gcr.folder_paths.contained_path`)."""
        return contained_path(self.path, path)

    def relative(self, path: str | Path) -> str:
        """How the state records ``path``: relative to this folder (POSIX) when inside it.

        The state and the trajectory hold such paths, so a run folder moved elsewhere resumes.
        """
        try:
            return Path(path).resolve().relative_to(self.path).as_posix()
        except ValueError:
            return str(path)

    def source_path(self, index: int) -> Path:
        return self.path / "inputs" / f"source-{index}.png"

    def image_path(self, round_index: int, candidate: int) -> Path:
        return self.path / "rounds" / f"r{round_index:02d}" / f"c{candidate:02d}.png"

    def critique_paths(self, round_index: int, candidate: int) -> tuple[Path, Path]:
        """(parsed JSON, raw text) of a candidate's critique."""
        stem = self.image_path(round_index, candidate).with_suffix("")
        return stem.with_name(stem.name + ".critique.json"), stem.with_name(stem.name + ".critique.txt")

    def file(self, name: str) -> Path:
        return self.path / name

    # ------------------------------------------------------------------ writing

    def write_text(self, path: str | Path, text: str) -> Path:
        target = Path(path) if Path(path).is_absolute() else self.path / path
        return write_text_atomic(target, text)

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

    def write_trajectory(self, rounds: Sequence[RoundRecord], candidates: Sequence[CandidateRecord]) -> Path:
        lines = []
        for record in rounds:
            members = [c for c in candidates if c["round"] == record["round"]]
            lines.append(json.dumps({**record, "candidates": members}, ensure_ascii=False, default=str))
        return self.write_text(self.TRAJECTORY, "".join(line + "\n" for line in lines))

    # ------------------------------------------------------------------ reading

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        if not path.is_file():
            raise RunError(f"{path} is missing; is {self.path} a gcr run folder?")
        try:
            return json.loads(path.read_text("utf-8"))
        except ValueError as exc:
            raise RunError(f"{path} is not valid JSON ({exc}); the run folder is damaged") from None

    def read_trajectory(self) -> list[dict[str, Any]]:
        path = self.file(self.TRAJECTORY)
        if not path.is_file():
            return []
        rounds = []
        for number, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = parse_json_line(line)
            except ValueError as exc:
                record, why = None, str(exc)
            else:
                why = "not a round record"
            if not isinstance(record, dict):
                raise RunError(
                    f"{path} line {number} is damaged ({why}): delete it and resume again; gcr rewrites "
                    "it from the checkpoints"
                )
            rounds.append(record)
        return rounds


def build_summary(
    values: Mapping[str, Any],
    *,
    task: str,
    generator: str,
    critic: str,
    refiner: str,
    finished_at: float,
    folder: RunFolder | None = None,
) -> dict[str, Any]:
    """The content of ``summary.json`` from the graph's final state ``values``.

    Paths in the summary are absolute, in ``folder`` (default: the state's ``run_dir``).
    """
    folder = folder if folder is not None else RunFolder(values.get("run_dir") or ".")

    def where(path: str | None) -> str | None:
        return None if path is None else str(folder.resolve(path))

    rounds: list[RoundRecord] = list(values.get("rounds") or [])
    candidates: list[CandidateRecord] = list(values.get("candidates") or [])
    best: CandidateRecord | None = values.get("best")
    start_reward = rounds[0]["best_reward"] if rounds else None
    final_reward = best["reward"] if best else None
    refine_s = sum(r.get("refinement", {}).get("refine_s", 0.0) for r in rounds)
    started_at = values.get("started_at") or finished_at
    return {
        "prompt": values.get("prompt"),
        "task": task,
        "source_images": [where(p) for p in values.get("source_images") or []],
        "generator": generator,
        "critic": critic,
        "refiner": refiner,
        "best": None
        if best is None
        else {
            "image": where(best["image"]),
            "prompt": best["prompt"],
            "reward": best["reward"],
            "scores": best["scores"],
            "round": best["round"],
            "candidate": best["index"],
            "seed": best["seed"],
            "critique": where(best["critique_json"]),
        },
        "start_reward": start_reward,
        "final_reward": final_reward,
        "improvement": None if start_reward is None or final_reward is None else final_reward - start_reward,
        "rounds": len(rounds),
        "generations": len(candidates),
        "skipped_candidates": sum(1 for c in candidates if c["status"] == "skipped"),
        "prompts": [r["prompt"] for r in rounds],
        "round_rewards": [r["best_reward"] for r in rounds],
        "stop_reason": values.get("stop_reason"),
        "stop_detail": values.get("stop_detail"),
        "timings": {
            "generate_s": sum(c["generate_s"] for c in candidates),
            "critique_s": sum(c["critique_s"] for c in candidates),
            "refine_s": refine_s,
            "rounds_s": sum(r["elapsed_s"] for r in rounds),
            "wall_s": max(0.0, finished_at - started_at),
        },
        "run_dir": str(folder.path),
    }
