"""A critic URL's password is used, but never written to a run folder or a benchmark folder, nor shown.

The real ``gcr`` command runs in a subprocess (with the scripted ``pixel`` generator), against the
scripted critic server; one prompt makes the server reject the request, so error messages (printed,
recorded in results.jsonl, saved in the checkpoints) name the critic URL too. Then every byte of
every file written is searched for the password.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from benchkit import PixelCriticServer, PixelScript, write_jsonl

from stubs.critic_server import RecordedRequest, StubReply

RUN_GCR = Path(__file__).with_name("run_gcr.py")
PASSWORD = "S3cret-Pa55word"


def _files_holding(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _folded(text: str) -> str:
    return " ".join(text.split())


def _gcr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        str(RUN_GCR),
        *args,
        "--generator-kind",
        "pixel",
        "--generator",
        "pixel",
        "--no-cache",
    ]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_the_critic_password_is_used_but_never_written_or_shown(tmp_path: Path) -> None:
    with PixelCriticServer(PixelScript()) as server:
        scripted = server.responder

        def respond(request: RecordedRequest) -> StubReply:
            if "[reject]" in request.user_text():
                return StubReply.error(400, "this request is rejected by the script")
            return scripted(request)  # type: ignore[misc]

        server.responder = respond
        url = server.url.replace("http://", f"http://gcr-user:{PASSWORD}@")
        common = ["--critic", url, "--max-rounds", "2", "--target", "1"]

        prompts = write_jsonl(
            tmp_path / "p.jsonl",
            [
                {"id": "fine", "prompt": "a fine scene [base 2.5]"},
                {"id": "bad", "prompt": "a scene [reject]"},
            ],
        )
        bench = _gcr(tmp_path, "bench", str(prompts), "--out", str(tmp_path / "bench"), *common)
        refine = _gcr(tmp_path, "refine", "a quiet lake [base 2.5]", "--out", str(tmp_path / "run"), *common)
        failed = _gcr(tmp_path, "refine", "a lake [reject]", "--out", str(tmp_path / "failed"), *common)
        resumed = _gcr(tmp_path, "refine", "--resume", str(tmp_path / "failed"), "--critic", url)
        chats = server.chat_requests

    assert refine.returncode == 0, refine.stderr
    assert failed.returncode == 1 and "rejected the request (HTTP 400)" in _folded(failed.stderr)
    assert resumed.returncode == 1 and "rejected the request (HTTP 400)" in _folded(resumed.stderr)
    results = (tmp_path / "bench" / "results.jsonl").read_text()
    assert "rejected the request (HTTP 400)" in results and "gcr-user:***@127.0.0.1" in results
    # The password was sent to the critic (HTTP basic auth from the URL), so it was kept in memory ...
    expected = "Basic " + base64.b64encode(f"gcr-user:{PASSWORD}".encode()).decode()
    assert chats and all(r.headers.get("authorization") == expected for r in chats)
    # ... and nowhere else: not in any file of the three run folders and the benchmark, nor on screen.
    assert (tmp_path / "run" / "checkpoints.sqlite").is_file()
    assert (tmp_path / "bench" / "runs" / "bad" / "checkpoints.sqlite").is_file()
    assert _files_holding(tmp_path, PASSWORD) == []
    for done in (bench, refine, failed, resumed):
        # Without any whitespace, so a password split by line wrapping would still be found.
        assert PASSWORD not in "".join((done.stdout + done.stderr).split())
