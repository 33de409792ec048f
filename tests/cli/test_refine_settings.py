"""One refine configuration: RefineContext, the gcr refine/bench flags, --config files and the docs agree."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from gcr.agent.context import RefineContext
from gcr.agent.run_folder import RunFolder
from gcr.agent.runner import RunSpec
from gcr.agent.stopping import StopRules
from gcr.cli import refine as refine_cli
from gcr.cli.app import app
from gcr.cli.refine_flags import COMBINED_OPTIONS, flag_names, settings_table
from gcr.errors import InputError, RunError
from stubs.cli import run_gcr

DOCS = Path(__file__).resolve().parents[2] / "docs" / "agent.md"


def gcr(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``gcr ARGS`` in-process, output piped; stderr with its line breaks folded."""
    code, out, err = run_gcr(monkeypatch, capsys, *args)
    return code, out, " ".join(err.split())


@pytest.fixture
def captured(monkeypatch) -> dict[str, RunSpec]:
    """``gcr refine`` builds its RunSpec and stops before any model loads."""
    seen: dict[str, RunSpec] = {}

    def capture(folder, spec, *, resume, as_json, judges=None):
        seen["spec"], seen["folder"] = spec, folder
        raise InputError("captured")

    monkeypatch.setattr(refine_cli, "_run", capture)
    return seen


def _command_params(*path: str) -> dict[str, object]:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}


def _shown(value: object) -> str:
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return '""' if value == "" else str(value)


def test_cli_defaults_docs_table_and_dataclass_agree() -> None:
    defaults = RefineContext()
    docs = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- refine-settings:start[^\n]*-->\n(.*?)<!-- refine-settings:end -->", docs, re.S)
    assert block is not None, "docs/agent.md lost its refine-settings table"
    assert block.group(1) == settings_table(), "regenerate it with: python -m gcr.cli.refine_flags"
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `(\w+)` \| (.*?) \| `(.*?)` \|", block.group(1), re.M)
    }
    assert set(rows) == {f.name for f in dataclasses.fields(RefineContext)}
    for command in (("refine",), ("bench", "run")):
        params = _command_params(*command)
        for f in dataclasses.fields(RefineContext):
            value = getattr(defaults, f.name)
            shown = _shown(value)
            assert rows[f.name][1] == shown, f.name
            if f.metadata.get("set_by") or (command == ("bench", "run") and f.name == "interactive"):
                assert f.name not in params, f.name  # set through another option, or not for a batch
                continue
            param = params[f.name]
            assert param.default == value, (command, f.name)
            declared = [*param.opts, *param.secondary_opts]
            for name in flag_names(f):
                assert all(n in declared for n in name.split("/")), (command, name)
            assert param.help.startswith(f.metadata["help"]), (command, f.name)
        for name in COMBINED_OPTIONS:
            assert params[name].default in (None, "all"), name  # nothing set: the fields' defaults hold
    # The stopping policy's defaults are the settings' defaults.
    assert StopRules() == StopRules.from_context(defaults)


def test_help_lists_every_setting_flag_unwrapped_when_piped() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gcr", "refine", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for f in dataclasses.fields(RefineContext):
        for name in flag_names(f) or (f.metadata["set_by"],):
            assert name.split("/")[0] in done.stdout, name
    assert "--config" in done.stdout


def test_config_file_loads_and_flags_given_win(monkeypatch, capsys, tmp_path: Path, captured) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "candidates: 2\nmax_rounds: 6\ntarget_reward: null\nseed_policy: per-round\n"
        "dimensions: [text_faithfulness, physical_quality]\nweights: {text_faithfulness: 2}\n"
        "min_delta: 1  # an integer for a float is fine\n",
        encoding="utf-8",
    )
    code, _, err = gcr(
        monkeypatch, capsys, "refine", "three apples", "--config", str(config), "--candidates", "4",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 1 and "captured" in err
    context = captured["spec"].context
    assert isinstance(context, RefineContext)
    assert (context.candidates, context.max_rounds, context.target_reward) == (4, 6, None)
    assert context.seed_policy == "per-round" and context.min_delta == 1.0
    assert context.dimensions == ["text_faithfulness", "physical_quality"]
    assert context.weights == {"text_faithfulness": 2.0}
    # A flag left at its default does not undo the file; a JSON file works the same way.
    as_json = tmp_path / "run.json"
    as_json.write_text(json.dumps({"max_rounds": 3, "write_report": False, "steps": 8}), encoding="utf-8")
    code, _, err = gcr(
        monkeypatch, capsys, "refine", "three apples", "--config", str(as_json), "--target", "none",
        "--reward", "tf", "--size", "64x32", "--out", str(tmp_path / "r2"),
    )  # fmt: skip
    context = captured["spec"].context
    assert (context.max_rounds, context.write_report, context.steps, context.target_reward) == (
        3,
        False,
        8,
        None,
    )
    assert (context.width, context.height, context.dimensions) == (64, 32, ["text_faithfulness"])
    assert context.candidates == RefineContext().candidates


def test_config_run_dir_is_the_run_folder_unless_out_is_given(
    monkeypatch, capsys, tmp_path, captured
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"run_dir: {tmp_path / 'from-file'}\n", encoding="utf-8")
    gcr(monkeypatch, capsys, "refine", "apples", "--config", str(config))
    assert captured["folder"].path == RunFolder(tmp_path / "from-file").path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_round: 3\n", "unknown setting 'max_round' in {file}; did you mean 'max_rounds'?"),
        ("max_rounds: many\n", "max_rounds in {file} must be an integer, got 'many'"),
        ("seed_policy: sometimes\n", "seed_policy in {file} must be one of 'fixed', 'per-round'"),
        ("write_report: maybe\n", "write_report in {file} must be true or false"),
        ("weights: {text_faithfulness: lots}\n", "weights.text_faithfulness in {file} must be a number"),
        ("- a list\n", "{file} must hold a mapping of settings"),
        ("candidates: [unclosed\n", "{file} is not valid YAML"),
        ("candidates: 0\n", "candidates must be at least 1"),
        ("dimensions: [sharpness]\n", "dimensions/weights in {file} and the command line"),
    ],
)
def test_bad_config_files_are_short_errors_naming_key_and_file(
    monkeypatch, capsys, tmp_path: Path, captured, text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    code, out, err = gcr(monkeypatch, capsys, "refine", "apples", "--config", str(config))
    assert code == 1 and out == "" and "captured" not in err
    assert message.format(file=config) in err
    assert "Traceback" not in err and len(err) < 400


def test_missing_config_file_and_bad_flag_values(monkeypatch, capsys, tmp_path: Path, captured) -> None:
    code, _, err = gcr(monkeypatch, capsys, "refine", "apples", "--config", str(tmp_path / "nope.yaml"))
    assert code == 1 and "config file not found" in err
    code, _, err = gcr(monkeypatch, capsys, "refine", "apples", "--target", "high")
    assert code == 2 and "'high' is not a number or 'none'" in err
    code, _, err = gcr(monkeypatch, capsys, "refine", "apples", "--seed-policy", "sometimes")
    assert code == 2 and "--seed-policy" in err
    code, _, err = gcr(monkeypatch, capsys, "refine", "apples", "--veto-drop", "0.1")
    assert code == 1 and "--veto-drop needs --veto-judge" in err


def test_bench_takes_the_config_file_too(monkeypatch, capsys, tmp_path: Path) -> None:
    from gcr.cli import bench as bench_cli

    seen = {}

    async def capture(prompt_set, template, folder, settings, progress):
        seen["template"] = template
        raise InputError("captured")

    monkeypatch.setattr(bench_cli, "_run", capture)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "apples"}\n', encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text("max_rounds: 2\ncandidates: 3\n", encoding="utf-8")
    code, _, err = gcr(monkeypatch, capsys, "bench", str(prompts), "--config", str(config), "-n", "1")
    assert code == 1 and "captured" in err
    assert (seen["template"].context.max_rounds, seen["template"].context.candidates) == (2, 1)


def test_run_json_with_the_mapping_form_still_resumes(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    spec = RunSpec(prompt="a cat", context=RefineContext(max_rounds=3, target_reward=None))
    spec.save(folder)
    saved = json.loads(folder.file(RunFolder.SETTINGS).read_text("utf-8"))
    assert saved["context"]["max_rounds"] == 3  # still a plain JSON mapping
    assert RunSpec.load(folder) == spec
    # An older run.json that lists only some settings: the rest take their defaults.
    saved["context"] = {"max_rounds": 2, "candidates": 2}
    folder.file(RunFolder.SETTINGS).write_text(json.dumps(saved), encoding="utf-8")
    loaded = RunSpec.load(folder)
    assert loaded.context == RefineContext(max_rounds=2, candidates=2)
    # A tampered one is refused with the file named, never run with a silent default.
    saved["context"] = {"max_rounds": "lots"}
    folder.file(RunFolder.SETTINGS).write_text(json.dumps(saved), encoding="utf-8")
    with pytest.raises(
        RunError, match="cannot be resumed: max_rounds in the run settings must be an integer"
    ):
        RunSpec.load(folder)
