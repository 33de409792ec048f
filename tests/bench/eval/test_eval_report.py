"""Table 1 rows: the paper's figures, ours in the benchmark's column, and the gap."""

from __future__ import annotations

from gcr.bench.eval.report import (
    LAYOUT_COLUMN,
    PUBLISHED_ACCURACY,
    REFERENCE_MODEL,
    TABLE1_COLUMNS,
    format_accuracy,
    table1_rows,
)


def _summary(layout: str, accuracy: float | None, critic: str = "rr-8b", mode: str = "pairwise") -> dict:
    return {
        "table1_column": LAYOUT_COLUMN.get(layout),
        "settings": {"critic": critic, "mode": mode},
        "accuracy": {"accuracy": accuracy, "ci_low": None if accuracy is None else accuracy - 0.05,
                     "ci_high": None if accuracy is None else accuracy + 0.05},
    }


def test_published_figures_match_the_paper() -> None:
    assert PUBLISHED_ACCURACY[REFERENCE_MODEL] == {
        "MMRB2 T2I": 64.2, "MMRB2 Edit": 70.3, "EditReward": 66.2, "GenAI T2I": 69.8, "GenAI Edit": 80.1,
    }
    assert PUBLISHED_ACCURACY["Qwen3-VL-8B as plain judge"]["EditReward"] == 51.9
    assert PUBLISHED_ACCURACY["Gemini 2.5 Pro"]["GenAI Edit"] == 78.9
    assert all(set(figures) == set(TABLE1_COLUMNS) for figures in PUBLISHED_ACCURACY.values())
    assert set(LAYOUT_COLUMN.values()) == set(TABLE1_COLUMNS)


def test_our_rows_sit_in_the_right_columns_beside_the_paper() -> None:
    rows = table1_rows([_summary("mmrb2-edit", 0.712), _summary("genai-t2i", 0.65)])
    paper = [r for r in rows if r["source"] == "paper"]
    assert [r["model"] for r in paper] == [f"{m} (paper)" for m in PUBLISHED_ACCURACY]
    assert paper[0]["cells"]["MMRB2 Edit"] == "70.3"
    ours = [r for r in rows if r["source"] == "ours"]
    assert len(ours) == 1 and ours[0]["model"] == "rr-8b (pairwise, ours)"
    assert ours[0]["cells"] == {"MMRB2 Edit": "71.2 (66.2–76.2)", "GenAI T2I": "65.0 (60.0–70.0)"}
    delta = next(r for r in rows if r["source"] == "delta")
    assert delta["cells"] == {"MMRB2 Edit": "+0.9", "GenAI T2I": "-4.8"}


def test_modes_get_their_own_rows_and_undefined_accuracy_shows_a_dash() -> None:
    rows = table1_rows([_summary("editreward", 0.5, mode="pointwise"), _summary("editreward", None)])
    ours = {r["model"]: r["cells"] for r in rows if r["source"] == "ours"}
    assert ours == {"rr-8b (pointwise, ours)": {"EditReward": "50.0 (45.0–55.0)"},
                    "rr-8b (pairwise, ours)": {"EditReward": "–"}}
    deltas = [r["cells"] for r in rows if r["source"] == "delta"]
    assert deltas == [{"EditReward": "-16.2"}]
    assert format_accuracy(None) == "–" and format_accuracy(0.6667) == "66.7"
