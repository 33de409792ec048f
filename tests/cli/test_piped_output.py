"""The CLI with its output piped (not a terminal): nothing wrapped, cut or drawn; user text never markup.

Every test runs ``gcr`` in a subprocess with stdout and stderr captured, ``COLUMNS``
unset, so rich sees what a CI log or a ``| tee`` sees.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from stubs.critic_server import GOOD_T2I_ANSWER, StubCriticServer, StubReply

ROOT = Path(__file__).resolve().parents[2]
RUN_GCR = ROOT / "tests" / "bench" / "run_gcr.py"
BOX = set("─│┌┐└┘├┤┬┴┼━┃┏┓┗┛╭╮╰╯")


def piped_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def gcr(
    *args: str, cwd: Path, script: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    command = [sys.executable, str(script)] if script else [sys.executable, "-m", "gcr"]
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=piped_env()
    )


def long_folder(base: Path) -> Path:
    """A path far longer than 80 columns, with words rich would like to break at."""
    return base / "a folder with a rather long name" / "and another level that is long too" / "run here"


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_an_error_naming_a_long_path_is_one_unbroken_line(tmp_path: Path) -> None:
    folder = long_folder(tmp_path)
    folder.mkdir(parents=True)
    assert len(str(folder)) > 100
    done = gcr("refine", "--resume", str(folder), cwd=tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: ") and str(folder) in errors[0]

    image = folder / "no such image with a long name.png"
    done = gcr(
        "critique", str(image), "--prompt", "a red cube", "--critic", "http://127.0.0.1:9/v1", cwd=tmp_path
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "not found" in errors[0] and str(image) in errors[0], done.stderr


def test_critique_shows_critic_text_with_brackets_as_plain_text(tmp_path: Path) -> None:
    """A critic answer starting ``[/INST]``, with markup-like text inside, renders as written."""
    answer = "[/INST] " + GOOD_T2I_ANSWER.replace(
        "The cube is red and sits on a blue sphere as requested.",
        "The cube is red [/b] and sits on a blue sphere [bold]as requested[/bold] :cat:.",
    ).replace("with a crisp contact shadow under studio lighting.", "with a crisp [/] shadow.")
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(image)
    with StubCriticServer(default=StubReply.ok(answer)) as stub:
        done = gcr(
            "critique", str(image), "--prompt", "p[/x] a red cube",
            "--critic", stub.url, "--model", "stub-critic",
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[/b] and sits on a blue sphere [bold]as requested[/bold] :cat:." in done.stdout
    assert "with a crisp [/] shadow." in done.stdout
    assert "Traceback" not in done.stderr


def test_refine_piped_prints_one_line_per_step_and_whole_paths(tmp_path: Path) -> None:
    """``gcr refine`` with a scripted critic: no live table remnants, every path whole on its line."""
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    from benchkit import PixelCriticServer, PixelScript

    out = long_folder(tmp_path)
    with PixelCriticServer(PixelScript()) as server:
        done = gcr(
            "refine", "p[/x] a [bold]lamp[/] on a desk", "--generator-kind", "pixel", "--generator", "pixel",
            "--critic", server.url, "--model", "pixel-critic", "--max-rounds", "3", "--target", "1",
            "--no-cache", "--out", str(out),
            cwd=tmp_path, script=RUN_GCR,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not BOX & set(done.stderr), done.stderr
    asked = lines_with(done.stderr, "generating 1 image(s) for: ")
    assert asked[0] == "round 0: generating 1 image(s) for: p[/x] a [bold]lamp[/] on a desk", done.stderr
    assert len(asked) == 3
    assert len(lines_with(done.stderr, " done: rewards ")) == 3
    report = lines_with(done.stderr, "report: ")
    assert len(report) == 1 and report[0].endswith(str(out / "report.html")), done.stderr
    assert done.stdout.strip().startswith(str(out)) and len(done.stdout.strip().splitlines()) == 1


def test_refine_interrupted_by_a_dead_critic_prints_a_copyable_resume_hint(tmp_path: Path) -> None:
    out = long_folder(tmp_path)
    # Nothing listens on port 9: the first critique fails once the client's retries are spent.
    done = gcr(
        "refine", "a lamp", "--generator-kind", "pixel", "--generator", "pixel",
        "--critic", "http://127.0.0.1:9/v1", "--model", "m", "--no-cache", "--out", str(out),
        cwd=tmp_path, script=RUN_GCR,
    )  # fmt: skip
    assert done.returncode == 1
    hint = lines_with(done.stderr, "continue it with:")
    assert (out / "checkpoints.sqlite").exists()
    assert hint == [f"the run is saved; continue it with: gcr refine --resume {out}"], done.stderr
    assert not BOX & set(done.stderr), done.stderr
    assert all(line.startswith(("error: ", "WARNING: ", "the run is saved", "round ", "t2i"))
               for line in done.stderr.splitlines() if line.strip()), done.stderr  # fmt: skip


def test_refine_with_a_model_that_does_not_load_writes_nothing_and_suggests_no_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = gcr(
        "refine", "a lamp", "--generator-kind", "pixel", "--generator", "pixel?task=nonsense",
        "--critic", "http://127.0.0.1:9/v1", "--model", "m", "--no-cache", "--out", str(out),
        cwd=tmp_path, script=RUN_GCR,
    )  # fmt: skip
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "--resume" not in done.stderr and not out.exists()


def test_usage_errors_are_plain_single_lines(tmp_path: Path) -> None:
    done = gcr("refine", "a lamp", "--size", cwd=tmp_path)
    assert done.returncode == 2
    assert "Error: Option '--size' requires an argument." in done.stderr.splitlines()
    assert not BOX & set(done.stderr)


def test_a_critic_url_with_brackets_is_not_markup_in_the_status_line(tmp_path: Path) -> None:
    from PIL import Image

    image = tmp_path / "img.png"
    Image.new("RGB", (8, 8), "red").save(image)
    done = gcr(
        "critique", str(image), "--prompt", "a cube", "--critic", "http://127.0.0.1:9/[/x]/v1",
        "--model", "m", "--retries", "0", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr
    assert done.stderr.startswith("error: ") and "http://127.0.0.1:9/[/x]/v1" in done.stderr


def test_piped_help_keeps_every_option_on_one_line(tmp_path: Path) -> None:
    """Click wraps help at 80 columns in a pipe; piped, each option and its help is one line."""
    for command in ([], ["refine"], ["bench", "run"], ["eval"], ["train", "sft"]):
        done = gcr(*command, "--help", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert not set(done.stdout) & BOX, done.stdout
        # A wrapped help text continues on a line indented past the option column, under an
        # option line that already holds help (click puts the help of a long option name on
        # the next line: that is layout, not wrapping).
        lines = done.stdout.splitlines()
        continued = [
            line
            for before, line in itertools.pairwise(lines)
            if line.startswith(" " * 6) and line.strip() and "  " in before.strip()
        ]
        assert continued == [], (command, continued)
        assert any(len(line) > 100 for line in done.stdout.splitlines()) or command == [], done.stdout
