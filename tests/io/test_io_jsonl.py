"""The JSONL log's one recovery rule, its limits, concurrent appends, and the strict input reader."""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
from pathlib import Path

import pytest

import gcr.io.jsonl as jsonl
from gcr.errors import ConfigError, DatasetError, RunError
from gcr.io import JsonlLog, read_jsonl


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8").split("\n")


def test_records_round_trip_in_order_with_text_kept(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "log.jsonl"
    with JsonlLog(path) as log:
        log.append({"id": "a", "prompt": "ein Bär im Schnee"})
        log.append({"id": "b", "n": 2})
    assert JsonlLog(path).records() == [{"id": "a", "prompt": "ein Bär im Schnee"}, {"id": "b", "n": 2}]
    assert "ein Bär" in path.read_text("utf-8")  # not \\u-escaped


def test_a_cut_off_last_line_is_ignored_by_readers_and_truncated_by_the_next_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n{"id": "c", "stat', encoding="utf-8")
    before = path.read_bytes()
    assert JsonlLog(path).numbered() == [(1, {"id": "a"}), (3, {"id": "b"})]
    assert path.read_bytes() == before  # reading never changes the file

    log = JsonlLog(path)
    with caplog.at_level(logging.WARNING, logger="gcr.io.jsonl"):
        log.append({"id": "c", "status": "ok"})
    log.close()
    assert "dropping its last line" in caplog.text
    assert path.read_text("utf-8") == '{"id": "a"}\n\n{"id": "b"}\n{"id": "c", "status": "ok"}\n'


def test_a_whole_last_record_without_its_newline_is_kept_and_completed(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}', encoding="utf-8")
    assert [r["id"] for r in JsonlLog(path).records()] == ["a", "b"]
    with JsonlLog(path) as log:
        log.append({"id": "c"})
    assert _lines(path) == ['{"id": "a"}', '{"id": "b"}', '{"id": "c"}', ""]


@pytest.mark.parametrize(
    "body, line, why",
    [
        ('{"id": "a"}\n{"id": "b", "sta\n{"id": "c"}\n', 2, "not valid JSON"),
        ('{"id": "a"}\n{"id": "b", "sta\n', 2, "not valid JSON"),  # complete (newline) yet broken
        ('{"id": "a"}\n[1, 2]\n{"id": "c"}\n', 2, "not a record object"),
        ('{"id": "a"}\n"text"\n', 2, "not a record object"),
    ],
)
def test_a_damaged_complete_line_is_an_error_naming_file_and_line(
    tmp_path: Path, body: str, line: int, why: str
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RunError, match=rf"log\.jsonl line {line} is damaged \(.*{why}.*delete that line"):
        JsonlLog(path).records()


def test_a_line_that_is_not_utf8_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "\xff\xfe"}\n')
    with pytest.raises(RunError, match=r"line 2 is damaged .*not UTF-8"):
        JsonlLog(path).records()


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"id": "a"}\n{"id": "' + "x" * 5000 + '"}\n{"id": "c"}\n', encoding="utf-8")
    with pytest.raises(RunError, match=r"line 2 is damaged .*longer than 1000 bytes"):
        JsonlLog(path, max_line_bytes=1000).records()
    # A huge cut-off tail is no write of gcr's (gcr never writes such a line): an error, not a silent cut.
    path.write_text('{"id": "a"}\n{"id": "' + "x" * 5000, encoding="utf-8")
    with pytest.raises(RunError, match="line 2 is damaged"):
        JsonlLog(path, max_line_bytes=1000).records()
    with pytest.raises(RunError, match="ends with a line longer than 1000 bytes"):
        JsonlLog(path, max_line_bytes=1000).append({"id": "b"})
    assert path.read_text("utf-8").endswith("x" * 100)  # nothing was cut


def test_a_record_too_long_to_read_back_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = JsonlLog(path, max_line_bytes=200)
    with pytest.raises(RunError, match="over the 200 a line may hold"):
        log.append({"id": "a", "text": "x" * 500})
    log.append({"id": "b"})
    log.close()
    assert JsonlLog(path).records() == [{"id": "b"}]


def test_the_cut_off_tail_is_found_past_a_long_last_line(tmp_path: Path) -> None:
    # The writer looks back for the last newline in chunks; a tail longer than one chunk is still cut whole.
    path = tmp_path / "log.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "text": "' + "y" * 200_000, encoding="utf-8")
    with JsonlLog(path) as log:
        log.append({"id": "c"})
    assert JsonlLog(path).records() == [{"id": "a"}, {"id": "c"}]


def test_rewrite_replaces_the_file_and_appends_continue_after_it(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = JsonlLog(path)
    for i in range(5):
        log.append({"id": str(i)})
    log.rewrite([{"id": "3"}])
    log.append({"id": "5"})
    log.close()
    assert JsonlLog(path).records() == [{"id": "3"}, {"id": "5"}]
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]


def test_default_converts_what_json_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with JsonlLog(path, default=str) as log:
        log.append({"id": "a", "where": Path("x/y")})
    with JsonlLog(path) as log, pytest.raises(TypeError):
        log.append({"id": "b", "where": Path("x/y")})
    assert JsonlLog(path).records() == [{"id": "a", "where": "x/y"}]


def test_durable_appends_fsync_each_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(jsonl.os, "fsync", synced.append)
    with JsonlLog(tmp_path / "fast.jsonl") as log:
        log.append({"id": "a"})
    assert synced == []
    with JsonlLog(tmp_path / "safe.jsonl", durable=True) as log:
        log.append({"id": "a"})
        log.append({"id": "b"})
    assert len(synced) == 2


def test_concurrent_appends_from_threads_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    shared = JsonlLog(path)
    payload = "z" * 4000  # several lines per page, so torn interleaving would show

    def work(worker: int, own: bool) -> None:
        log = JsonlLog(path) if own else shared
        for i in range(150):
            log.append({"id": f"{worker}-{i}", "pad": payload})
        if own:
            log.close()

    threads = [threading.Thread(target=work, args=(w, w % 2 == 0)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.close()
    ids = [r["id"] for r in JsonlLog(path).records()]
    assert len(ids) == len(set(ids)) == 8 * 150


def _append_many(path: str, worker: int) -> None:
    with JsonlLog(path) as log:
        for i in range(200):
            log.append({"id": f"{worker}-{i}", "pad": "p" * 3000})


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_concurrent_appends_from_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    ids = [r["id"] for r in JsonlLog(path).records()]
    assert len(ids) == len(set(ids)) == 4 * 200


def test_a_missing_log_reads_as_empty(tmp_path: Path) -> None:
    assert JsonlLog(tmp_path / "none.jsonl").records() == []


# ---------------------------------------------------------------------- input files


def test_read_jsonl_is_strict_about_every_line_including_the_last(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('\ufeff{"a": 1}\n\n  \n[2]\n{"a": 3}', encoding="utf-8")
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, [2]), (5, {"a": 3})]
    path.write_text('{"a": 1}\n{"a": ', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"rows\.jsonl:2: not valid JSON \(.* at column 7\)"):
        list(read_jsonl(path))
    with pytest.raises(ConfigError, match=r"rows\.jsonl:2: not valid JSON"):
        list(read_jsonl(path, error=ConfigError))


def test_read_jsonl_limits_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"a": "x" * 3000}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"rows\.jsonl:1: the line is longer than 100 bytes"):
        list(read_jsonl(path, max_line_bytes=100))
    path.write_bytes(b'{"a": 1}\n{"a": "\xe9"}\n')
    with pytest.raises(DatasetError, match=r"rows\.jsonl:2: not UTF-8 text"):
        list(read_jsonl(path))
    with pytest.raises(DatasetError, match="cannot read"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
