"""``gcr bench`` end to end: tiny diffusers pipelines, gcr's HTTP critic, processes killed and sharded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from benchkit import PixelCriticServer, PixelScript, write_jsonl

import gcr.cli.bench as bench_cli
import gcr.cli.refine as refine_cli
from gcr.agent.cache import ArtifactCache
from gcr.agent.components import Components
from gcr.agent.refiner import make_refiner
from gcr.critic.loading import load_critic
from gcr.errors import InputError
from gcr.generators.registry import create_generator
from stubs.cli import run_gcr as gcr
from stubs.prompt_aware_critic import (
    PromptAwareCriticServer,
    PromptAwareScript,
    RecordingGenerator,
    SceneBook,
)

RUN_GCR = Path(__file__).with_name("run_gcr.py")


def folded(text: str) -> str:
    return " ".join(text.split())


def test_tiny_sd_pipeline_with_http_critic(monkeypatch, capsys, tiny_pipeline_dir, tmp_path: Path) -> None:
    book, calls = SceneBook(), []
    server = PromptAwareCriticServer(PromptAwareScript(), book).start()

    def load(spec, task):
        inner = create_generator(spec.generator_kind, spec.generator, **spec.generator_options)
        return Components(
            generator=RecordingGenerator(inner, book, calls),
            critic=load_critic(spec.critic, model=spec.critic_model, max_retries=0, timeout=10),
            refiner=make_refiner(spec.refiner),
            cache=ArtifactCache(spec.cache_dir) if spec.use_cache else None,
        )

    monkeypatch.setattr(bench_cli, "load_components", load)
    out_dir = tmp_path / "out"
    try:
        code, out, err = gcr(
            monkeypatch, capsys,
            "bench", "builtin:counting", "--limit", "2",
            "--generator", str(tiny_pipeline_dir("sd")), "--device", "cpu", "--steps", "2", "--size", "32",
            "--critic", server.url, "--model", "stub-critic", "--max-rounds", "3", "--target", "1",
            "--cache-dir", str(tmp_path / "cache"), "--baseline", "best-of-n",
            "--out", str(out_dir), "--json",
        )  # fmt: skip
    finally:
        server.stop()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["counts"] == {"finished": 2, "failed": 0, "baseline_finished": 2, "baseline_failed": 0}
    assert summary["prompt_set"]["name"] == "counting" and summary["critic"] == "stub-critic"
    # The stub critic rewards "golden light" and "sharp focus": refinement adds them one per round.
    assert summary["reward"]["final"]["mean"] > summary["reward"]["initial"]["mean"]
    assert summary["reward"]["win_rate"]["wins"] == 2
    assert summary["baseline"]["refine_generations"] == summary["baseline"]["baseline_generations"] == 6
    results = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in results) == ["counting-01", "counting-02"]
    assert all(r["prompts"][-1].endswith("golden light, sharp focus") for r in results)
    # 6 refine images; the baselines' round-0 seed comes from the cache, their two others are new.
    assert len(calls) == 6 + 2 * 2 == summary["throughput"]["generator_calls"]
    assert (out_dir / "report.html").is_file() and (
        out_dir / "runs" / "counting-01" / "report.html"
    ).is_file()
    assert json.loads((out_dir / "summary.json").read_text())["reward"] == summary["reward"]


def test_bench_takes_refine_flags_with_refine_meaning(monkeypatch, capsys, tmp_path: Path) -> None:
    flags = [
        "--generator", "my/model", "--generator-kind", "diffusers", "--critic", "http://127.0.0.1:9/v1",
        "--model", "m", "--refiner", "llm", "--refiner-url", "http://127.0.0.1:9/v1", "--refiner-model", "w",
        "--max-rounds", "5", "--target", "0.8", "--dimension-target", "3.5", "--min-delta", "0.05",
        "--patience", "3", "--max-time", "60", "--max-generations", "12", "-n", "2", "--seed", "7",
        "--seed-policy", "per-round", "--steps", "9", "--size", "64x48", "--guidance", "2.5",
        "--negative", "blurry", "--reward", "tf=2,pq=1", "--device", "cpu", "--dtype", "float32",
        "--offload", "--cache-dir", str(tmp_path / "c"), "--no-cache", "--no-report",
    ]  # fmt: skip
    seen: dict[str, object] = {}

    def capture_refine(folder, spec, *, resume, as_json):
        seen["refine"] = spec
        raise InputError("captured")

    async def capture_bench(prompt_set, template, folder, settings, progress):
        seen["bench"], seen["settings"] = template, settings
        raise InputError("captured")

    monkeypatch.setattr(refine_cli, "_run", capture_refine)
    monkeypatch.setattr(bench_cli, "_run", capture_bench)
    code, _, err = gcr(monkeypatch, capsys, "refine", "a prompt", *flags, "--out", str(tmp_path / "r"))
    assert code == 1 and "captured" in err
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a prompt"}])
    code, _, err = gcr(
        monkeypatch, capsys, "bench", str(prompts), *flags, "--concurrency", "3", "--limit", "1"
    )
    assert code == 1 and "captured" in err
    refine, bench = seen["refine"], seen["bench"]
    fields = (
        "context",
        "generator",
        "generator_kind",
        "generator_options",
        "critic",
        "critic_model",
        "refiner",
        "refiner_url",
        "refiner_model",
        "cache_dir",
        "use_cache",
    )
    for name in fields:
        assert getattr(bench, name) == getattr(refine, name), name
    assert bench.context.candidates == 2 and bench.context.weights == {
        "text_faithfulness": 2.0,
        "physical_quality": 1.0,
    }
    assert seen["settings"].concurrency == 3 and seen["settings"].limit == 1
    # Refine's flags that make no sense for a batch are not offered.
    code, _, err = gcr(monkeypatch, capsys, "bench", str(prompts), "--interactive")
    assert code == 2 and "No such option" in err


def test_list_sets_merge_and_errors(monkeypatch, capsys, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gcr", "bench", "list-sets"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and "builtin:edits" in done.stdout and "builtin:all-t2i" in done.stdout
    code, _, err = gcr(monkeypatch, capsys, "bench", "merge", str(tmp_path))
    assert code == 1 and "holds no gcr bench results (bench.json is missing)" in folded(err)
    code, _, err = gcr(monkeypatch, capsys, "bench", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "prompt set" in err and "not found" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n{"id": 1}\n')
    code, _, err = gcr(monkeypatch, capsys, "bench", str(bad))
    assert code == 1 and "bad.jsonl:2: field 'prompt' is missing" in folded(err)
    code, _, err = gcr(monkeypatch, capsys, "bench", "builtin:counting", "--baseline", "best-of-3")
    assert code == 1 and "unknown baseline 'best-of-3'" in err


def _command(prompts: Path, out: Path, url: str, log: Path | None, *extra: str) -> list[str]:
    generator = "pixel?hold=0.12" + (f"&log={log}" if log is not None else "")
    return [
        sys.executable, str(RUN_GCR), "bench", str(prompts),
        "--generator-kind", "pixel", "--generator", generator,
        "--critic", url, "--max-rounds", "3", "--target", "1", "--no-cache", "--out", str(out), *extra,
    ]  # fmt: skip


def _log(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    return [
        (p, int(s)) for p, s in (line.split("\t") for line in log.read_text().splitlines() if line.strip())
    ]


def _results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def test_kill_9_then_rerun_finishes_without_redoing_work(tmp_path: Path) -> None:
    rows = [{"id": f"k{i}", "prompt": f"kill test {i} [base 1.75]"} for i in range(8)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    out, log = tmp_path / "out", tmp_path / "calls.log"
    with PixelCriticServer(PixelScript(), latency=0.05) as server:
        cmd = _command(prompts, out, server.url, log, "--concurrency", "2")
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(_results(out / "results.jsonl")) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the benchmark made no progress"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        finished = {r["id"] for r in _results(out / "results.jsonl")}
        before = _log(log)
        assert 3 <= len(finished) < 8 and len(before) < 24

        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    records = _results(out / "results.jsonl")
    assert sorted(r["id"] for r in records) == [f"k{i}" for i in range(8)]  # each prompt exactly once
    bad = [r for r in records if r["status"] != "ok" or r["rounds"] != 3]
    keys = ("id", "status", "rounds", "stop_reason", "error")
    assert not bad, [{k: r.get(k) for k in keys} for r in bad]
    after = _log(log)[len(before) :]
    finished_prompts = {f"kill test {r[1:]} [base 1.75]" for r in finished}
    assert not [
        p for p, _ in after if p.split(",")[0] in finished_prompts
    ]  # finished prompts: not regenerated
    counts = Counter(before + after)
    assert len(counts) == 24  # 8 prompts x 3 rounds
    # Redone at most: the generation in flight at the kill, and one that had just returned but whose
    # image file was not complete yet (the next generation may start meanwhile).
    assert sum(n - 1 for n in counts.values()) <= 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["finished"] == 8 and summary["throughput"]["sessions"] == 2


def test_sharded_processes_share_the_critic_and_the_last_writes_the_report(tmp_path: Path) -> None:
    rows = [{"id": f"d{i}", "prompt": f"shard test {i} [base {1.75 + 0.75 * (i % 3)}]"} for i in range(6)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    with PixelCriticServer(PixelScript(), latency=0.02) as server:
        single = subprocess.run(
            _command(prompts, tmp_path / "single", server.url, tmp_path / "s.log"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert single.returncode == 0, single.stderr
        procs = []
        for rank in range(2):
            env = {
                **os.environ,
                "RANK": str(rank),
                "WORLD_SIZE": "2",
                "LOCAL_RANK": str(rank),
                "PIXEL_LOG": str(tmp_path / f"r{rank}.log"),
            }
            cmd = _command(prompts, tmp_path / "sharded", server.url, None)  # same settings in every shard
            procs.append(
                subprocess.Popen(
                    cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        outputs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert len(server.chat_requests) > 0
    shard_prompts = [{p for p, _ in _log(tmp_path / f"r{rank}.log")} for rank in range(2)]
    assert {p.split(",")[0] for p in shard_prompts[0]} == {r["prompt"] for r in rows[0::2]}
    assert {p.split(",")[0] for p in shard_prompts[1]} == {r["prompt"] for r in rows[1::2]}
    a = json.loads((tmp_path / "single" / "summary.json").read_text())
    b = json.loads((tmp_path / "sharded" / "summary.json").read_text())  # written by the last shard
    for key in ("counts", "reward", "dimensions", "rounds", "gallery"):
        assert a[key] == b[key], key
    # A shard that finished before the other says how to build the report (both may finish at once).
    assert all("gcr bench merge" in folded(err) or "reward, round 0" in out for out, err in outputs)


@pytest.mark.parametrize("name", ["merge"])
def test_merge_rebuilds_the_report(monkeypatch, capsys, tmp_path: Path, name: str) -> None:
    from benchkit import PixelCritic, PixelGenerator
    from test_bench_pipeline import run, template

    from gcr.bench.prompt_files import load_prompt_set

    rows = [{"id": "m", "prompt": "merge me [base 3.25]"}, {"id": "f", "prompt": "broken [fail-gen]"}]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    run(prompt_set, tmp_path / "out", PixelGenerator(), PixelCritic(), template())
    assert not (tmp_path / "out" / "report.html").exists()
    capsys.readouterr()  # the run's own log of the failure
    code, out, err = gcr(monkeypatch, capsys, "bench", name, str(tmp_path / "out"))
    assert code == 0, err
    assert "reward, round 0" in out and "0.750" in out and "1.000" in out
    assert (tmp_path / "out" / "report.html").is_file()
    # The failure is said once, on stderr, with what to do; stdout holds only the tables.
    assert "failed" not in out.replace("finished / failed", "")
    (line,) = [line for line in err.splitlines() if line.strip()]
    assert line.startswith("1 run(s) failed and are left out of the figures; rerun the gcr bench command")


@pytest.mark.slow
def test_accelerate_launch_shards_the_prompts(tmp_path: Path) -> None:
    """``accelerate launch`` sets RANK/WORLD_SIZE/LOCAL_RANK (through torchrun); no process group needed."""
    rows = [{"id": f"a{i}", "prompt": f"accelerate test {i} [base 2]"} for i in range(4)]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    accelerate = Path(sys.executable).with_name("accelerate")
    launcher = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]  # fmt: skip
    with PixelCriticServer(PixelScript(), latency=0.02) as server:
        cmd = _command(prompts, tmp_path / "out", server.url, None, "--max-rounds", "2", "--json")
        done = subprocess.run(
            [*launcher, *cmd[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr
    shards = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    assert shards == ["rank-00-of-02", "rank-01-of-02"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["finished"] == 4 and summary["throughput"]["sessions"] == 2
