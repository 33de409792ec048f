"""Atomic writes: the target holds the old content or the new, and no temporary file is left behind."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from PIL import Image

import gcr.io.atomic as atomic
from gcr.io import atomic_file, copy_file_atomic, write_bytes_atomic, write_json_atomic, write_text_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_text_json_and_bytes_replace_the_target_and_leave_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_text_atomic(target, "old\n")
    write_json_atomic(target, {"prompt": "ein Bär", "path": Path("a/b")})
    assert target.read_text("utf-8") == '{\n  "prompt": "ein Bär",\n  "path": "a/b"\n}\n'
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(300_000))
    copy_file_atomic(source, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    assert _leftovers(tmp_path) == [] and _leftovers(target.parent) == []


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    target.write_bytes(b"old")
    with pytest.raises(OSError), atomic_file(target) as fh:
        fh.write(b"half an image")
        raise OSError("disk full")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []

    class Unserializable:
        pass

    with pytest.raises(TypeError):
        write_text_atomic(target, Unserializable())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_failing_image_encoder_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    with pytest.raises((KeyError, ValueError)), atomic_file(target) as fh:
        Image.new("RGB", (4, 4)).save(fh, format="NO-SUCH-FORMAT")
    assert not target.exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_the_new_file_gets_the_permissions_a_plain_write_would(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644


def test_only_durable_writes_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    write_text_atomic(tmp_path / "fast.txt", "x")
    assert calls == []
    write_text_atomic(tmp_path / "safe.txt", "x", durable=True)
    assert len(calls) >= 1  # the file (and, on POSIX, its folder)
    assert (tmp_path / "safe.txt").read_text() == "x"


def test_concurrent_writers_of_one_target_never_leave_a_mixed_file(tmp_path: Path) -> None:
    target = tmp_path / "shared.txt"
    bodies = [str(i) * 50_000 for i in range(8)]

    def write(body: str) -> None:
        for _ in range(20):
            write_text_atomic(target, body)

    threads = [threading.Thread(target=write, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text() in bodies
    assert _leftovers(tmp_path) == []


def test_only_the_two_modes_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_file(tmp_path / "x", "a"):  # type: ignore[arg-type]
        pass
