"""Running an evaluation with a scripted in-process critic: exact accuracy, both modes, resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from evalkit import CASES, WITH_TIES, FakeCritic, case_images, write_jsonl, write_parquet

from gcr.bench.eval import EvalSettings, open_dataset, run_eval, summarize
from gcr.bench.eval.output import RESULTS_FILE
from gcr.errors import InputError, RunError
from gcr.task import Task

LABELLED = [c.key for c in CASES if c.label != "unknown"]


def _results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]


def _run(ds, critic, out, **kw):
    settings = EvalSettings(**kw)
    outcome = asyncio.run(run_eval(ds, critic, out, settings, critic_id=critic.model_id))
    return outcome, settings


@pytest.mark.parametrize("mode", ["pairwise", "pointwise"])
def test_exact_accuracy_with_ties_failures_and_unknown_labels(mode: str, tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("editreward", tmp_path / "er.parquet"))
    critic = FakeCritic(Task.EDIT)
    outcome, settings = _run(ds, critic, tmp_path / "out", mode=mode, concurrency=4)
    summary = summarize(outcome, ds, settings, critic=critic.model_id)

    acc = summary["accuracy"]
    assert (acc["correct"], acc["evaluated"]) == (WITH_TIES["correct"], WITH_TIES["evaluated"])
    assert acc["accuracy"] == pytest.approx(5 / 8)
    assert acc["ci_low"] == pytest.approx(0.3057, abs=1e-4)
    assert acc["ci_high"] == pytest.approx(0.8632, abs=1e-4)
    assert summary["counts"]["failed"] == 2 and summary["counts"]["unknown_labels"] == 1
    assert summary["failures"]["by_type"] == {"CriticUnavailableError": 1, "CritiqueParseError": 1}
    assert {e["id"] for e in summary["failures"]["examples"]} == {"case-07", "case-08"}
    assert (acc["label_ties"], acc["predicted_ties"]) == (2, 2)
    assert summary["predictions"] == {"A": 3, "B": 3, "tie": 2}
    # cat-x: 01 ✓ 02 ✓ 03 ✗ 04 ✗ 05 ✓; cat-y: 06 ✗ 10 ✓ 11 ✓ (07, 08 failed; 09 unknown)
    cat_x, cat_y = summary["by_category"]["cat-x"], summary["by_category"]["cat-y"]
    assert (cat_x["correct"], cat_x["evaluated"]) == (3, 5)
    assert (cat_y["correct"], cat_y["evaluated"]) == (2, 3)
    assert summary["by_category"]["cat-y"]["failed"] == 2
    assert summary["by_category"]["cat-y"]["unknown_labels"] == 1
    assert summary["table1_column"] == "EditReward" and summary["published"][
        "RationalRewards (Qwen3-VL-8B)"] == 66.2

    # The unknown-labelled pair is never sent to the critic.
    requested = {key for key, _, _ in critic.calls}
    assert requested == set(LABELLED)
    if mode == "pairwise":
        assert all(m == "pairwise" and side == "AB" for _, m, side in critic.calls)
        assert len(critic.calls) == len(LABELLED)
    else:
        assert sorted(side for _, _, side in critic.calls) == ["A"] * 10 + ["B"] * 10
    records = _results(tmp_path / "out")
    assert sorted(r["id"] for r in records) == sorted(LABELLED)
    ok = next(r for r in records if r["id"] == "case-10")
    assert (ok["total_a"], ok["total_b"], ok["status"], ok["mode"]) == (11.5, 11.75, "ok", mode)
    assert ok["scores"]["text_rendering"] == [None, None]


def test_tie_tolerance_is_applied_at_report_time(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("genai-t2i", tmp_path / "g.parquet"))
    critic = FakeCritic(Task.T2I)
    outcome, settings = _run(ds, critic, tmp_path / "out")
    calls = len(critic.calls)
    loose = summarize(outcome, ds, settings, tie_tolerance=0.5)
    assert loose["accuracy"]["correct"] == WITH_TIES["correct_tol_0.5"]
    assert loose["predictions"]["tie"] == 4 and loose["settings"]["tie_tolerance"] == 0.5
    assert len(critic.calls) == calls  # nothing judged again


def test_rerun_retries_failed_pairs_only_and_never_duplicates(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("genai-edit", tmp_path / "g.parquet"))
    out = tmp_path / "out"
    first = FakeCritic(Task.EDIT)
    outcome, _ = _run(ds, first, out)
    assert outcome.requested == 10
    assert sum(r["status"] == "failed" for r in _results(out)) == 2

    healthy = FakeCritic(Task.EDIT)
    healthy.healthy = True
    outcome, settings = _run(ds, healthy, out)
    assert sorted(key for key, _, _ in healthy.calls) == ["case-07", "case-08"]
    assert (outcome.requested, outcome.reused) == (2, 8)
    records = _results(out)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 10 and all(r["status"] == "ok" for r in records)
    summary = summarize(outcome, ds, settings)
    # case-07 (label B, B scored higher) and case-08 (label A, A higher) are now both right.
    assert (summary["accuracy"]["correct"], summary["accuracy"]["evaluated"]) == (7, 10)
    assert summary["counts"]["failed"] == 0

    third = FakeCritic(Task.EDIT)
    outcome, _ = _run(ds, third, out)
    assert third.calls == [] and outcome.requested == 0


def test_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("genai-t2i", tmp_path / "g.parquet"))
    out = tmp_path / "out"
    critic = FakeCritic(Task.T2I, delay=0.01)
    critic.healthy = True

    async def interrupted() -> None:
        done = 0
        task: asyncio.Task | None = None

        def on_result(record: dict) -> None:
            nonlocal done
            done += 1
            if done == 3 and task is not None:
                task.cancel()

        settings = EvalSettings(concurrency=1)
        task = asyncio.ensure_future(
            run_eval(ds, critic, out, settings, critic_id="fake-critic", on_result=on_result)
        )
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    kept = [r["id"] for r in _results(out)]
    assert len(kept) == 3
    # A kill during a write leaves a torn last line; the next run drops it.
    with (out / RESULTS_FILE).open("a") as fh:
        fh.write('{"id": "row-0000')

    again = FakeCritic(Task.T2I)
    again.healthy = True
    outcome, _ = _run(ds, again, out, concurrency=3)
    labelled_ids = [k.id for k in ds.scan() if k.label != "unknown"]
    assert sorted(key for key, _, _ in again.calls) == sorted(
        CASES[i].key for i, k in enumerate(ds.scan()) if k.label != "unknown" and k.id not in kept
    )
    records = _results(out)
    assert sorted(r["id"] for r in records) == sorted(labelled_ids)
    assert outcome.reused == 3


def test_concurrency_limit_is_used_and_respected(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("genai-t2i", tmp_path / "g.parquet"))
    critic = FakeCritic(Task.T2I, delay=0.05)
    _run(ds, critic, tmp_path / "out", concurrency=3)
    assert critic.max_in_flight == 3
    pointwise = FakeCritic(Task.T2I, delay=0.05)
    _run(ds, pointwise, tmp_path / "out-pw", concurrency=2, mode="pointwise")
    assert pointwise.max_in_flight == 4  # two pairs, two candidates each


def test_limit_and_settings_guard(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("genai-t2i", tmp_path / "g.parquet"))
    critic = FakeCritic(Task.T2I)
    outcome, settings = _run(ds, critic, tmp_path / "out", limit=4)
    assert [k.id for k in outcome.keys] == [f"row-{i:06d}" for i in range(4)]
    assert len(critic.calls) == 4
    assert summarize(outcome, ds, settings)["counts"]["rows_in_scope"] == 4
    with pytest.raises(RunError, match="mode='pairwise', not 'pointwise'"):
        _run(ds, critic, tmp_path / "out", mode="pointwise")
    other = FakeCritic(Task.T2I)
    other.model_id = "another-critic"
    with pytest.raises(RunError, match="critic='fake-critic', not 'another-critic'"):
        _run(ds, other, tmp_path / "out")
    another_dataset = open_dataset(write_jsonl("genai-t2i", tmp_path / "j"))
    with pytest.raises(RunError, match="dataset_name='g', not 'pairs'"):
        _run(another_dataset, critic, tmp_path / "out")


def test_broken_image_fails_its_pair_only(tmp_path: Path) -> None:
    path = write_jsonl("genai-t2i", tmp_path / "d")
    (tmp_path / "d" / "images" / "001_b.png").unlink()
    ds = open_dataset(path)
    critic = FakeCritic(Task.T2I)
    critic.healthy = True
    outcome, settings = _run(ds, critic, tmp_path / "out")
    summary = summarize(outcome, ds, settings)
    assert summary["failures"]["by_type"] == {"ImageError": 1}
    assert "row 1 (id row-000001), field 'right_image'" in summary["failures"]["examples"][0]["message"]
    assert summary["accuracy"]["evaluated"] == 9
    assert "case-02" not in {key for key, _, _ in critic.calls}


def test_pointwise_critiques_a_shared_candidate_once(tmp_path: Path) -> None:
    # An EditReward-style group: three candidates, every pair of them compared, same instruction.
    imgs = case_images(0)
    folder = tmp_path / "group"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "src.png").write_bytes(imgs["src"])
    for name, color in (("1", (230, 5, 5)), ("2", (5, 5, 230)), ("3", (200, 40, 40))):
        from evalkit import png

        (folder / "img" / f"{name}.png").write_bytes(png(color))
    rows = [
        {"id": f"g_{a}vs{b}", "instruction": "A scene for case-01", "source_image": "img/src.png",
         "candidate_1": f"img/{x}.png", "candidate_2": f"img/{y}.png", "ranking": f"{a}>{b}",
         "comparison_type": f"{a}vs{b}"}
        for (a, x), (b, y) in [(("A", "1"), ("B", "2")), (("A", "1"), ("C", "3")), (("B", "2"), ("C", "3"))]
    ]
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = open_dataset(folder / "pairs.jsonl")
    critic = FakeCritic(Task.EDIT)
    outcome, _ = _run(ds, critic, tmp_path / "out", mode="pointwise", concurrency=1)
    assert all(r["status"] == "ok" for r in outcome.records.values())
    assert len(critic.calls) == 3  # three distinct candidates, not six critiques


def test_both_orders_average_out_a_position_bias_and_count_the_flips(tmp_path: Path) -> None:
    ds = open_dataset(write_parquet("editreward", tmp_path / "er.parquet"))
    out = tmp_path / "out"
    # The critic adds a point to whichever image it is shown first.
    biased = FakeCritic(Task.EDIT, first_bonus=1.0)
    single, settings = _run(ds, biased, out)
    summary = summarize(single, ds, settings)
    assert summary["accuracy"]["correct"] == 4 and summary["order_agreement"] is None
    assert {side for _, _, side in biased.calls} == {"AB"}

    # Both orders into the same folder: the good (A, B) records are reused; the failed ones are retried.
    again = FakeCritic(Task.EDIT, first_bonus=1.0)
    outcome, settings = _run(ds, again, out, both_orders=True)
    asked = {(key, side) for key, _, side in again.calls}
    assert asked == {(key, "BA") for key in LABELLED} | {("case-07", "AB"), ("case-08", "AB")}
    assert (outcome.reused, outcome.requested) == (8, 12)
    summary = summarize(outcome, ds, settings)
    # Averaged over both orders the bonus cancels: the unbiased critic's 5 of 8 (see evalkit.CASES).
    assert (summary["accuracy"]["correct"], summary["accuracy"]["evaluated"]) == (5, 8)
    assert summary["counts"]["failed"] == 2 and summary["settings"]["both_orders"] is True
    # Cases 03, 04, 05, 06, 10 and 11 change verdict with the order; 01 and 02 do not.
    assert summary["order_agreement"] == {
        "pairs": 8, "flips": 6, "flip_rate": 0.75,
        "accuracy_ab": 0.5, "accuracy_ba": 0.5, "accuracy_per_judgement": 0.5,
    }
    records = _results(out)
    keys = [(r["id"], r.get("order")) for r in records if r["status"] == "ok"]
    assert len(keys) == len(set(keys)) == 16
    swapped = next(r for r in records if r["id"] == "case-10" and r["order"] == "ba")
    # Stored in the pair's own terms: B was shown first and got the bonus.
    assert (swapped["total_a"], swapped["total_b"]) == (11.5, 12.75)
    assert swapped["scores"]["text_faithfulness"] == [3.5, 4.0]

    # A rerun asks only for what failed, in the order that failed.
    healthy = FakeCritic(Task.EDIT, first_bonus=1.0)
    healthy.healthy = True
    outcome, settings = _run(ds, healthy, out, both_orders=True)
    assert sorted(healthy.calls) == sorted(
        (key, "pairwise", side) for key in ("case-07", "case-08") for side in ("AB", "BA")
    )
    assert summarize(outcome, ds, settings)["order_agreement"]["pairs"] == 10


def test_both_orders_need_pairwise_mode() -> None:
    with pytest.raises(InputError, match="pairwise mode"):
        EvalSettings(mode="pointwise", both_orders=True)
