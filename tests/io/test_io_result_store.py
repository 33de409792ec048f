"""Per-item result files, and one recovery rule for every log gcr resumes from."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gcr.bench.folder import BenchFolder
from gcr.bench.judging import read_judgements
from gcr.errors import RunError
from gcr.io import ResultStore, read_results
from gcr.training.parrot.jobs import ResultLog, run_jobs


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_load_compacts_failed_and_duplicate_records(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "results.jsonl",
        '{"id": "a", "status": "ok", "v": 1}\n'
        '{"id": "b", "status": "failed"}\n'
        '{"id": "a", "status": "ok", "v": 2}\n'
        '{"id": "c", "status": "ok"}\n',
    )
    with ResultStore(path) as store:
        kept = store.load()
        assert {k: r.get("v") for k, r in kept.items()} == {"a": 1, "c": None}
        store.append({"id": "b", "status": "ok"})
    assert [r["id"] for r in ResultStore(path).log.records()] == ["a", "c", "b"]


def test_a_custom_key_names_the_unit_of_work(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.jsonl",
        '{"id": "p", "order": "ab", "status": "ok"}\n{"id": "p", "order": "ba", "status": "ok"}\n',
    )
    kept = ResultStore(path, key=lambda r: (r["id"], r["order"])).load()
    assert set(kept) == {("p", "ab"), ("p", "ba")}


def test_read_results_changes_nothing_and_keeps_the_first_ok(tmp_path: Path) -> None:
    body = (
        '{"id": "a", "status": "failed"}\n{"id": "a", "status": "ok", "v": 1}\n'
        '{"id": "a", "status": "failed"}\n{"id": "b", "status": "fa'
    )
    path = _write(tmp_path / "results.jsonl", body)
    records = read_results(path)
    assert records == {"a": {"id": "a", "status": "ok", "v": 1}}
    assert path.read_text("utf-8") == body


def test_a_record_without_an_id_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "results.jsonl", '{"status": "ok"}\n')
    with pytest.raises(RunError, match=r"results\.jsonl:1 is not a result record"):
        ResultStore(path).load()
    with pytest.raises(RunError, match=r"results\.jsonl:1 is not a result record"):
        read_results(path)


# ------------------------------------------------ the same rule for every resumable log

CUT = '{"id": "a", "key": "a", "judge": "j", "status": "ok"}\n{"id": "b", "key": "b", "judge": "j", "sta'
DAMAGED = (
    '{"id": "a", "key": "a", "judge": "j", "status": "ok"}\n'
    '{"id": "b", "key": "b", "judge": "j", "sta\n'
    '{"id": "c", "key": "c", "judge": "j", "status": "ok"}\n'
)


def _readers(tmp_path: Path):
    """Every reader of a resumable gcr log, each given the file text: what it returns as ids."""

    def store(text: str) -> set[str]:
        return set(ResultStore(_write(tmp_path / "s" / "results.jsonl", text)).load())

    def results(text: str) -> set[str]:
        return set(read_results(_write(tmp_path / "r" / "results.jsonl", text)))

    def bench(text: str) -> set[str]:
        _write(tmp_path / "b" / "shards" / "rank-1-of-2" / "results.jsonl", text)
        return set(BenchFolder(tmp_path / "b").records("results"))

    def judgements(text: str) -> set[str]:
        _write(tmp_path / "j" / "judgements.jsonl", text)
        return {case for case, _ in read_judgements(BenchFolder(tmp_path / "j"))}

    def parrot(text: str) -> set[str]:
        return set(ResultLog(_write(tmp_path / "p" / "anchored.jsonl", text)).ok())

    return {"store": store, "results": results, "bench": bench, "judgements": judgements, "parrot": parrot}


@pytest.mark.parametrize("reader", ["store", "results", "bench", "judgements", "parrot"])
def test_every_log_drops_a_cut_off_last_line_and_refuses_a_damaged_one(tmp_path: Path, reader: str) -> None:
    read = _readers(tmp_path)[reader]
    assert read(CUT) == {"a"}
    with pytest.raises(RunError, match="line 2 is damaged"):
        read(DAMAGED)


def test_a_resumed_parrot_phase_cuts_the_torn_line_instead_of_burying_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "anchored.jsonl", '{"key": "a", "status": "ok"}\n{"key": "b", "sta')

    async def work(key: str) -> dict:
        return {"status": "ok"}

    stats = asyncio.run(run_jobs(["a", "b"], work, ResultLog(path), concurrency=1))
    assert (stats.already_done, stats.ok) == (1, 1)
    # Before, the torn text stayed in the file as a damaged middle line; now a later run still reads it.
    assert set(ResultLog(path).ok()) == {"a", "b"}
    assert path.read_text("utf-8").count("\n") == 2
