"""Independent judges in gcr bench, and the cross-judge veto in the loop, with scores known in advance.

The pixel generator paints which script phrases a prompt holds into its image; the
scripted critic (benchkit) raises its reward for every phrase, and the scripted judge
server (stubs/judge_server.py, a VIEScore judge over HTTP) scores by the same phrase
mask: it likes "golden light" (0.6 against 0.5 for none) but hates "sharp focus" next
to it (0.3). So the critic climbs 0 → 1 → 3 while the judge goes 0.5 → 0.6 → 0.3.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchkit import PixelCritic, PixelCriticServer, PixelGenerator, PixelScript, components, write_jsonl

from gcr.agent.run_folder import RunFolder
from gcr.agent.runner import RunSpec
from gcr.bench.folder import BenchFolder
from gcr.bench.judging import judge_bench, read_judgements
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.bench.prompt_files import load_prompt_set
from gcr.bench.report import build_summary, write_bench_report
from gcr.judges import load_judge
from stubs.critic_server import StubCriticServer
from stubs.judge_server import ScriptedJudge

RUN_GCR = Path(__file__).with_name("run_gcr.py")
SCRIPT = PixelScript()
#: Judge score (0-1) by phrase mask: none, golden light, golden light + sharp focus.
JUDGE = {0: 0.5, 1: 0.6, 3: 0.3}


def scripted_judge(scores: dict[int, float] = JUDGE, default: float | None = None) -> ScriptedJudge:
    def table(s: float) -> dict[str, float]:
        return {"prompt_following": 10 * s, "naturalness": 10 * s, "artifacts": 10 * s}

    return ScriptedJudge(
        {(mask,): table(s) for mask, s in scores.items()},
        default=None if default is None else table(default),
        key=lambda colour: (colour[0],),
    )


@pytest.fixture
def judge_server():
    with StubCriticServer(models=("judge-vlm",)) as server:
        server.responder = scripted_judge()
        yield server


def template(**context: object) -> RunSpec:
    defaults = {"max_rounds": 3, "target_reward": 1.0, "candidates": 1, "patience": 5}
    return RunSpec(prompt="", context={**defaults, **context})


def bench(prompt_set, out: Path, spec: RunSpec, veto=None, **settings: object):
    gen, critic = PixelGenerator(), PixelCritic(SCRIPT)

    def load(s, t):
        parts = components(gen, critic)
        parts.veto = veto
        return parts

    return asyncio.run(run_bench(prompt_set, spec, str(out), BenchSettings(**settings), load=load))


@pytest.fixture
def three_prompts(tmp_path: Path):
    rows = [
        {"id": "hack", "prompt": "a harbour [base 2.0]"},  # critic 0 → 1 → 3; judge 0.5 → 0.3
        {"id": "agree", "prompt": "a forest [base 3.25]"},  # reaches the target at mask 1; judge 0.5 → 0.6
        {"id": "flat", "prompt": "a desert [base 4]"},  # perfect at round 0: nothing moves
    ]
    return load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))


def r(base: float, mask: int) -> float:
    return SCRIPT.reward(f"[base {base}]", mask, 0)


def test_gains_agreement_and_hacking_flag_exactly(tmp_path: Path, three_prompts, judge_server) -> None:
    out = tmp_path / "out"
    bench(three_prompts, out, template(), baseline="best-of-n")
    folder = BenchFolder(out)
    judge = load_judge(f"viescore:{judge_server.url}")
    outcome = asyncio.run(judge_bench(folder, [judge], specs=["viescore:JUDGE"]))
    assert (outcome.scored, outcome.failed, outcome.reused) == (3, 0, 0)

    summary = build_summary(folder)
    (j,) = summary["judges"]["judges"]
    assert j["spec"] == "viescore:JUDGE" and j["judge"] == judge.identity and j["n"] == 3
    assert j["initial"]["mean"] == pytest.approx(0.5)
    assert j["final"]["mean"] == pytest.approx((0.3 + 0.6 + 0.5) / 3)
    assert j["gain"]["mean"] == pytest.approx((-0.2 + 0.1 + 0.0) / 3)
    critic_gains = [r(2.0, 3) - r(2.0, 0), r(3.25, 1) - r(3.25, 0), 0.0]
    assert j["critic_gain"]["mean"] == pytest.approx(sum(critic_gains) / 3)
    assert summary["reward"]["delta"]["mean"] == pytest.approx(sum(critic_gains) / 3)
    assert (j["win_rate"]["wins"], j["win_rate"]["ties"], j["win_rate"]["losses"]) == (1, 1, 1)
    assert j["agreement"]["wins"] == 2 and j["agreement"]["n"] == 3
    assert j["agreement"]["table"] == {
        "critic_tie_judge_tie": 1, "critic_up_judge_down": 1, "critic_up_judge_up": 1
    }
    assert j["suspected_reward_hacking"]["ids"] == ["hack"]
    assert j["suspected_reward_hacking"]["judge_drops"]["hack"] == pytest.approx(-0.2)
    assert summary["judges"]["suspected_reward_hacking"] == {"count": 1, "ids": ["hack"]}
    # Against best-of-n (the judge sees plain generations of the user's prompt: 0.5 each).
    base = j["baseline"]
    assert base["n"] == 3 and base["gain"]["mean"] == pytest.approx((-0.2 + 0.1 + 0.0) / 3)
    assert j["failed"]["count"] == 0

    # The report shows both gains and the gallery card of the suspected prompt.
    _, report = write_bench_report(folder)
    text = report.read_text("utf-8")
    assert "Independent judges" in text and "viescore:JUDGE" in text
    assert "Suspected reward hacking (1 prompt(s)" in text and "a harbour" in text
    assert "critic (drove the loop)" in text

    # Rerun: everything is complete, nothing is asked again.
    asked = len(judge_server.chat_requests)
    again = asyncio.run(judge_bench(folder, [judge], specs=["viescore:JUDGE"]))
    assert (again.scored, again.reused) == (0, 3) and len(judge_server.chat_requests) == asked


def test_a_failed_judgement_is_recorded_left_out_and_retried(
    tmp_path: Path, three_prompts, judge_server
) -> None:
    out = tmp_path / "out"
    bench(three_prompts, out, template())
    folder = BenchFolder(out)
    judge_server.responder = scripted_judge({0: 0.5, 3: 0.3})  # mask 1 ("agree"'s final): unreadable
    judge = load_judge(f"viescore:{judge_server.url}")
    first = asyncio.run(judge_bench(folder, [judge], cache_dir=tmp_path / "cache"))
    assert (first.scored, first.failed) == (2, 1)
    record = read_judgements(folder)[("agree", judge.identity)]
    assert record["status"] == "failed" and record["final"]["status"] == "failed"
    assert "score" not in record["final"] and record["final"]["error"]["type"] == "JudgeResponseError"
    (j,) = build_summary(folder)["judges"]["judges"]
    assert j["n"] == 2 and j["failed"] == {"count": 1, "ids": ["agree"]}

    judge_server.responder = scripted_judge()
    asked = len(judge_server.chat_requests)
    second = asyncio.run(judge_bench(folder, [judge], cache_dir=tmp_path / "cache"))
    assert (second.scored, second.failed, second.reused) == (1, 0, 2)
    # Only the failed image is asked again (two VIEScore questions); the initial one comes from the cache.
    assert len(judge_server.chat_requests) - asked == 2
    (j,) = build_summary(folder)["judges"]["judges"]
    assert j["n"] == 3 and j["failed"]["count"] == 0


@pytest.mark.parametrize(
    ("drop", "kept_mask", "statuses"),
    [
        (0.1, 1, ["accepted", "vetoed"]),  # 0.3 < 0.6 - 0.1: the sharp-focus image is refused
        (0.3, 3, ["accepted", "accepted"]),  # falls by exactly 0.3: allowed
        (0.29, 1, ["accepted", "vetoed"]),
    ],
)
def test_veto_changes_the_kept_image_exactly_when_it_should(
    tmp_path: Path, judge_server, drop: float, kept_mask: int, statuses: list[str]
) -> None:
    prompts = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", [{"id": "v", "prompt": "a harbour"}]))
    spec = f"viescore:{judge_server.url}"
    out = tmp_path / "out"
    outcome = bench(prompts, out, template(veto_judge=spec, veto_drop=drop), veto=load_judge(spec))
    record = outcome.results["v"]
    assert record["final_reward"] == pytest.approx(r(2.0, kept_mask))
    assert record["best_round"] == (1 if kept_mask == 1 else 2)
    assert [v["status"] for v in record["vetoes"]] == statuses
    vetoed = [v for v in record["vetoes"] if v["status"] == "vetoed"]
    for v in vetoed:
        assert v["current_score"] == pytest.approx(0.6) and v["candidate_score"] == pytest.approx(0.3)
    trajectory = RunFolder(out / record["run_dir"]).read_trajectory()
    veto_rounds = [line["round"] for line in trajectory if line.get("veto")]
    assert veto_rounds == [1, 2]
    summary = build_summary(BenchFolder(out))
    assert summary["veto"]["vetoed"] == statuses.count("vetoed")
    assert summary["veto"]["prompts_vetoed"] == (["v"] if vetoed else [])


def test_without_veto_the_critic_alone_decides(tmp_path: Path) -> None:
    prompts = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", [{"id": "v", "prompt": "a harbour"}]))
    outcome = bench(prompts, tmp_path / "out", template())
    assert outcome.results["v"]["final_reward"] == pytest.approx(r(2.0, 3))
    assert outcome.results["v"]["vetoes"] == []


def test_gcr_bench_judge_end_to_end_piped(tmp_path: Path, judge_server) -> None:
    rows = [
        {"id": "hack", "prompt": "a harbour [base 2.0]"},
        {"id": "agree", "prompt": "a forest [base 3.25]"},
    ]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "out"
    with PixelCriticServer(SCRIPT) as critic:
        cmd = [
            sys.executable, str(RUN_GCR), "bench", str(prompts),
            "--generator-kind", "pixel", "--generator", "pixel", "--critic", critic.url,
            "--max-rounds", "3", "--target", "1", "--patience", "5", "--no-cache", "--out", str(out),
            "--judge", f"viescore:{judge_server.url}", "--json",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        asked = len(judge_server.chat_requests)
        # The same command again, as tables: nothing is generated, critiqued or judged twice.
        again = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert again.returncode == 0, again.stderr
    assert len(judge_server.chat_requests) == asked
    text = " ".join(again.stdout.split())
    assert "Independent judges" in text and f"viescore:{judge_server.url}: gain -0.050" in text
    assert "suspected reward hacking (critic up, a judge down): 1 prompt(s): hack" in text
    summary = json.loads(done.stdout)
    (j,) = summary["judges"]["judges"]
    assert j["n"] == 2 and j["gain"]["mean"] == pytest.approx((-0.2 + 0.1) / 2)
    assert summary["judges"]["suspected_reward_hacking"] == {"count": 1, "ids": ["hack"]}
    assert summary["reward"]["delta"]["mean"] == pytest.approx(
        ((r(2.0, 3) - r(2.0, 0)) + (r(3.25, 1) - r(3.25, 0))) / 2
    )
    assert "Suspected reward hacking" in (out / "report.html").read_text("utf-8")
    assert (out / "judgements.jsonl").is_file()


def test_sharded_judging_reports_once_every_shard_is_judged(tmp_path: Path, judge_server) -> None:
    """The report waits for the judgements of every shard, not only for their refine runs."""
    rows = [
        {"id": "hack", "prompt": "a harbour [base 2.0]"},
        {"id": "agree", "prompt": "a forest [base 3.25]"},
    ]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "out"
    judge = ["--judge", f"viescore:{judge_server.url}"]
    with PixelCriticServer(SCRIPT) as critic:
        cmd = [
            sys.executable, str(RUN_GCR), "bench", str(prompts),
            "--generator-kind", "pixel", "--generator", "pixel", "--critic", critic.url,
            "--max-rounds", "3", "--target", "1", "--patience", "5", "--no-cache", "--out", str(out),
        ]  # fmt: skip
        # Shard 0 has refined its prompt but not judged it yet (its judging is still to come).
        first = subprocess.run([*cmd, "--shard", "0/2"], capture_output=True, text=True, timeout=300)
        # Shard 1 finishes everything: every prompt is refined, but shard 0's is not judged.
        second = subprocess.run([*cmd, "--shard", "1/2", *judge], capture_output=True, text=True, timeout=300)
        assert not (out / "report.html").exists(), second.stderr
        assert "The last shard to finish writes the report" in second.stderr
        # Shard 0 judges its prompt; now everything is in, and it writes the report.
        third = subprocess.run([*cmd, "--shard", "0/2", *judge, "--json"], capture_output=True, text=True,
                               timeout=300)  # fmt: skip
    assert (first.returncode, second.returncode, third.returncode) == (0, 0, 0), third.stderr
    summary = json.loads(third.stdout)
    (j,) = summary["judges"]["judges"]
    assert j["n"] == 2 and j["gain"]["mean"] == pytest.approx((-0.2 + 0.1) / 2)


@pytest.mark.parametrize(("veto", "kept_mask", "hacking"), [(False, 3, True), (True, 1, False)])
def test_gcr_refine_judge_and_veto_piped(
    tmp_path: Path, judge_server, veto: bool, kept_mask: int, hacking: bool
) -> None:
    spec = f"viescore:{judge_server.url}"
    out = tmp_path / "run"
    with PixelCriticServer(SCRIPT) as critic:
        cmd = [
            sys.executable, str(RUN_GCR), "refine", "a harbour",
            "--generator-kind", "pixel", "--generator", "pixel", "--critic", critic.url,
            "--max-rounds", "3", "--target", "1", "--patience", "5", "--no-cache", "--out", str(out),
            "--judge", spec, "--json",
            *(["--veto-judge", spec, "--veto-drop", "0.1"] if veto else []),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["final_reward"] == pytest.approx(r(2.0, kept_mask))
    (verdict,) = summary["judges"]
    assert verdict["spec"] == spec
    assert verdict["initial"]["score"] == pytest.approx(0.5)
    assert verdict["final"]["score"] == pytest.approx(JUDGE[kept_mask])
    assert verdict["suspected_reward_hacking"] is hacking
    assert json.loads((out / "judges.json").read_text()) == summary["judges"]
    rounds = RunFolder(out).read_trajectory()
    assert [line.get("veto", {}).get("status") for line in rounds] == (
        [None, "accepted", "vetoed"] if veto else [None, None, None]
    )
    if veto:
        assert "vetoed</b>: the run kept its current best" in (out / "report.html").read_text("utf-8")


def test_veto_drop_without_a_veto_judge_is_refused(tmp_path: Path) -> None:
    cmd = [
        sys.executable, str(RUN_GCR), "refine", "a harbour",
        "--veto-drop", "0.1", "--out", str(tmp_path / "r"),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--veto-drop needs --veto-judge" in " ".join(done.stderr.split())


def test_bench_judges_on_tiny_models(monkeypatch, capsys, tiny_pipeline_dir, tmp_path: Path) -> None:
    """A tiny SD pipeline, gcr's HTTP critic on the prompt-aware stub, a tiny random CLIP and a
    scripted VIEScore judge: both judges' gains in summary.json match independent recomputation."""
    import io

    import gcr.cli.bench as bench_cli
    from gcr.agent.cache import ArtifactCache
    from gcr.agent.components import Components
    from gcr.agent.refiner import make_refiner
    from gcr.cli.app import main
    from gcr.critic.loading import load_critic
    from gcr.dev.tiny_clip import build_tiny_clip
    from gcr.generators.registry import create_generator
    from gcr.images import load_image
    from stubs.prompt_aware_critic import (
        PromptAwareCriticServer,
        PromptAwareScript,
        RecordingGenerator,
        SceneBook,
    )

    clip_dir = build_tiny_clip(tmp_path / "clip")
    book = SceneBook()
    critic = PromptAwareCriticServer(PromptAwareScript(), book).start()

    def load(spec, task):
        inner = create_generator(spec.generator_kind, spec.generator, **spec.generator_options)
        return Components(
            generator=RecordingGenerator(inner, book, []),
            critic=load_critic(spec.critic, model=spec.critic_model, max_retries=0, timeout=10),
            refiner=make_refiner(spec.refiner),
            cache=ArtifactCache(spec.cache_dir) if spec.use_cache else None,
        )

    monkeypatch.setattr(bench_cli, "load_components", load)
    judge_server_ = StubCriticServer(models=("judge-vlm",)).start()
    judge_server_.responder = scripted_judge({}, default=0.7)  # the same verdict for every image
    out_dir = tmp_path / "out"
    args = [
        "gcr", "bench", "builtin:counting", "--limit", "2",
        "--generator", str(tiny_pipeline_dir("sd")), "--device", "cpu", "--steps", "2", "--size", "32",
        "--critic", critic.url, "--model", "stub-critic", "--max-rounds", "3", "--target", "1",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(out_dir), "--json",
        "--judge", f"clip:{clip_dir}", "--judge", f"viescore:{judge_server_.url}",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", args)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        critic.stop()
        judge_server_.stop()
    summary = json.loads(capsys.readouterr().out)
    clip, vie = summary["judges"]["judges"]
    assert clip["spec"] == f"clip:{clip_dir}" and vie["spec"].startswith("viescore:")
    assert vie["n"] == 2 and vie["gain"]["mean"] == pytest.approx(0.0)
    assert vie["initial"]["mean"] == pytest.approx(0.7)
    # A constant judge never falls, so no prompt is flagged; it agrees only where the critic tied.
    assert vie["suspected_reward_hacking"]["count"] == 0
    assert summary["reward"]["win_rate"]["wins"] == 2 and vie["agreement"]["wins"] == 0

    # CLIP's gain, recomputed from the saved images with the model's own forward pass.
    import torch
    from transformers import AutoProcessor, CLIPModel

    model, proc = CLIPModel.from_pretrained(clip_dir).eval(), AutoProcessor.from_pretrained(clip_dir)

    def cosine(prompt: str, path: Path) -> float:
        with torch.no_grad():
            inputs = proc(text=[prompt], images=[load_image(path)], return_tensors="pt", padding=True)
            o = model(**inputs)
        return max(torch.nn.functional.cosine_similarity(o.image_embeds, o.text_embeds).item(), 0.0)

    records = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    gains = [
        cosine(r_["prompt"], out_dir / r_["best_image"]) - cosine(r_["prompt"], out_dir / r_["initial_image"])
        for r_ in records
    ]
    assert clip["n"] == 2 and clip["gain"]["mean"] == pytest.approx(sum(gains) / 2, abs=1e-5)
    assert "Independent judges" in (out_dir / "report.html").read_text("utf-8")


def test_veto_settings_bind_a_folder_only_when_a_veto_is_used(tmp_path: Path, three_prompts) -> None:
    from gcr.bench.pipeline import binding_settings

    plain = binding_settings(three_prompts, template())
    assert "veto_judge" not in plain["refine"] and "veto_drop" not in plain["refine"]
    vetoed = binding_settings(three_prompts, template(veto_judge="clip:", veto_drop=0.1))
    assert vetoed["refine"]["veto_judge"] == "clip:" and vetoed["refine"]["veto_drop"] == 0.1


class MaskJudge:
    """An in-process judge scoring pixel images by their phrase mask; masks in ``broken`` fail."""

    def __init__(self, scores=JUDGE, broken=(), error=None) -> None:
        self.scores, self.broken, self.error = dict(scores), set(broken), error
        self.identity = f"mask-judge:{sorted(self.scores.items())}"
        self.calls = 0

    async def judge(self, prompt, image, sources=()):
        from gcr.errors import JudgeResponseError
        from gcr.judges import JudgeResult

        self.calls += 1
        mask = image.convert("RGB").getpixel((0, 0))[0]
        if mask in self.broken:
            raise (self.error or JudgeResponseError("scripted: unreadable", "gibberish"))
        return JudgeResult(score=self.scores[mask], judge=self.identity)


def test_veto_through_the_python_api_and_when_the_judge_fails(tmp_path: Path) -> None:
    from gcr.agent.graph import build_graph
    from gcr.agent.runner import run_refine
    from gcr.errors import ConfigError, JudgeUnavailableError

    gen, critic = PixelGenerator(), PixelCritic(SCRIPT)

    def run(name: str, veto, **context):
        builder = build_graph(generator=gen, critic=critic, veto=veto)
        spec = RunSpec(prompt="a harbour", context=dataclasses.replace(template().context, **context))
        return asyncio.run(run_refine(builder, RunFolder(tmp_path / name), spec)).values

    # A judge given to build_graph is used (here it refuses the sharp-focus image).
    values = run("api", MaskJudge(), veto_drop=0.1)
    assert values["best"]["round"] == 1
    assert [r.get("veto", {}).get("status") for r in values["rounds"]] == [None, "accepted", "vetoed"]
    # Unreadable on the challenger: recorded as failed, the critic's choice stands, no score invented.
    values = run("unreadable", MaskJudge(broken={3}), veto_drop=0.1)
    last = values["rounds"][-1]["veto"]
    assert last["status"] == "failed" and last["candidate_score"] is None
    assert "JudgeResponseError" in last["error"]
    assert values["best"]["round"] == 2
    # Unreachable: the run stops (resumably), like an unreachable critic.
    down = MaskJudge(broken={1}, error=JudgeUnavailableError("scripted: the judge server is down"))
    with pytest.raises(JudgeUnavailableError, match="server is down"):
        run("down", down, veto_drop=0.1)
    # Settings that name a veto judge need one in the graph.
    with pytest.raises(ConfigError, match="built without one"):
        run("missing", None, veto_judge="clip:", veto_drop=0.1)


def test_an_unreachable_veto_judge_stops_the_benchmark(tmp_path: Path, three_prompts) -> None:
    from gcr.errors import JudgeUnavailableError

    down = MaskJudge(broken={1, 3}, error=JudgeUnavailableError("scripted: the judge server is down"))
    with pytest.raises(JudgeUnavailableError):
        bench(three_prompts, tmp_path / "out", template(veto_judge="mask:", veto_drop=0.1), veto=down)
