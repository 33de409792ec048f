"""A small PARROT SFT dataset (real PNGs, critic prompts, teacher answers) for the SFT tests."""

from __future__ import annotations

from pathlib import Path

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.training.parrot.answers import format_pairwise, format_pointwise
from gcr.training.parrot.data import load_preferences
from gcr.training.parrot.dataset import DatasetSettings, build_sft_dataset
from stubs.teacher_server import make_preferences, pairwise_answer, pointwise_answer

WIN_A = [(3.5, 2.0), (3.0, 3.0), (None, None)]
WIN_B = [(2.0, 3.5), (3.0, 3.0), (None, None)]


def build_tiny_sft_dataset(root: Path) -> Path:
    """Six t2i pairs → pairwise and pointwise records, split into train and validation by request."""
    specs = [
        {"id": f"p{i}", "request": f"a photo of object number {i}", "label": "AB"[i % 2]} for i in range(6)
    ]
    prefs = load_preferences(make_preferences(root / "prefs", specs))
    kept = {
        item.id: format_pairwise(
            parse_pairwise(pairwise_answer("t2i", WIN_A if item.label == "A" else WIN_B), "t2i")
        )
        for item in prefs
    }
    point = format_pointwise(parse_critique(pointwise_answer("t2i", [3.5, 3.0, None]), "t2i"))
    pointwise = [
        {"id": item.id, "candidate": c, "task": "t2i", "answer": point} for item in prefs for c in "AB"
    ]
    build_sft_dataset(prefs, kept, pointwise, root / "dataset", DatasetSettings(val_fraction=0.3))
    return root / "dataset"
