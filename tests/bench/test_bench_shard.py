"""Sharding: a deterministic split, settings from the environment, and shards + merge == one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchkit import PixelCritic, PixelGenerator, PixelScript, write_jsonl
from test_bench_pipeline import run, template

from gcr.bench.folder import BenchFolder
from gcr.bench.prompt_files import load_prompt_set
from gcr.bench.report import build_summary, write_bench_report
from gcr.bench.shard import ShardInfo, parse_shard, shard_from_env
from gcr.errors import ConfigError

#: Fields that depend on when and how fast a prompt ran, not on what it produced.
TIMING = ("elapsed_s", "finished_at", "timings")


def test_split_is_deterministic_and_complete() -> None:
    items = list(range(10))
    shards = [ShardInfo(rank=r, world_size=3).select(items) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(x for s in shards for x in s) == items
    assert ShardInfo(rank=1, world_size=3).label == "rank-01-of-03"


def test_shard_from_env_and_flag() -> None:
    assert shard_from_env({}) == ShardInfo(0, 1, 0)
    assert shard_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == ShardInfo(3, 4, 1)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "4"}).local_rank == 2
    with pytest.raises(ConfigError, match="RANK='x' is not a whole number"):
        shard_from_env({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match=r"shard rank 4 is outside 0\.\.3"):
        shard_from_env({"RANK": "4", "WORLD_SIZE": "4"})
    assert parse_shard("1/2") == ShardInfo(1, 2, 0)
    with pytest.raises(ConfigError, match="write INDEX/COUNT"):
        parse_shard("half")


def test_each_shard_gets_its_own_cuda_device() -> None:
    shard = ShardInfo(rank=5, world_size=8, local_rank=1)
    assert shard.device("cuda") == "cuda:1"
    assert shard.device("cpu") == "cpu" and shard.device("cuda:3") == "cuda:3"
    assert ShardInfo().device(None) is None and ShardInfo().device("cuda") == "cuda"


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


def test_shards_then_merge_equal_one_process(tmp_path: Path) -> None:
    rows = [
        {"id": f"s{i}", "prompt": f"shot {i} [base {1.5 + 0.5 * (i % 5)}]", "category": f"c{i % 3}"}
        for i in range(7)
    ]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    script = PixelScript(jitter=0.25)
    spec = template(candidates=2, max_rounds=3)

    single = tmp_path / "single"
    assert run(prompt_set, single, PixelGenerator(), PixelCritic(script), spec, baseline="best-of-n").complete

    sharded = tmp_path / "sharded"
    first = run(
        prompt_set,
        sharded,
        PixelGenerator(),
        PixelCritic(script),
        spec,
        baseline="best-of-n",
        shard=ShardInfo(0, 2),
    )
    assert [c.id for c in first.shard_cases] == ["s0", "s2", "s4", "s6"] and not first.complete
    second = run(
        prompt_set,
        sharded,
        PixelGenerator(),
        PixelCritic(script),
        spec,
        baseline="best-of-n",
        shard=ShardInfo(1, 2),
    )
    assert second.complete  # the last shard sees every prompt finished
    assert (sharded / "shards" / "rank-00-of-02" / "results.jsonl").is_file()
    assert not (sharded / "results.jsonl").exists()

    for kind in ("results", "baseline"):
        one = {k: _strip(v) for k, v in BenchFolder(single).records(kind).items()}
        many = {k: _strip(v) for k, v in BenchFolder(sharded).records(kind).items()}
        assert one == many and len(one) == 7

    write_bench_report(BenchFolder(sharded))
    a, b = build_summary(BenchFolder(single)), build_summary(BenchFolder(sharded))
    for key in (
        "counts",
        "reward",
        "dimensions",
        "rounds",
        "baseline",
        "categories",
        "gallery",
        "prompt_set",
    ):
        assert a[key] == b[key], key
    assert b["throughput"]["sessions"] == 2
    assert b["throughput"]["generator_calls"] == a["throughput"]["generator_calls"]
    assert json.loads((sharded / "summary.json").read_text())["counts"]["finished"] == 7
