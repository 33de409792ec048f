"""Each benchmark, in its published layout, through ``gcr bench`` and back out in its evaluator's layout.

The generator and critic are the scripted ones of the ``gcr bench`` tests: the
critic rewards the phrases "golden light" and "sharp focus", so refinement
changes the prompt and round 0 and the final best are different images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import benchfiles as bf
import pytest
from benchkit import PixelCritic, PixelGenerator, components

import gcr.cli.bench as bench_cli
from stubs.cli import run_gcr as gcr


@pytest.fixture
def scripted(monkeypatch):
    """``gcr bench`` with the pixel generator (for the set's task) and the scripted in-process critic."""

    def load(spec, task):
        return components(PixelGenerator(task=task.value), PixelCritic())

    monkeypatch.setattr(bench_cli, "load_components", load)


def bench(monkeypatch, capsys, spec: str, out: Path, *extra: str) -> dict:
    code, stdout, err = gcr(
        monkeypatch, capsys, "bench", spec, "--max-rounds", "2", "--target", "1", "--no-cache",
        "--baseline", "best-of-n", "--out", str(out), "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(stdout)


def export(monkeypatch, capsys, run: Path, layout: str, image_set: str, out: Path, *extra: str) -> dict:
    code, stdout, err = gcr(
        monkeypatch, capsys, "bench", "export", str(run), "--layout", layout, "--set", image_set,
        "--out", str(out), "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(stdout)


def records(run: Path, kind: str = "results") -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (run / f"{kind}.jsonl").read_text().splitlines())}


def image_of(run: Path, record: dict, key: str) -> bytes:
    return (run / record[key]).read_bytes()


def test_geneval_round_trip(monkeypatch, capsys, scripted, tmp_path: Path) -> None:
    metadata = bf.write_geneval(tmp_path / "geneval")
    run = tmp_path / "run"
    summary = bench(monkeypatch, capsys, f"geneval:{metadata}", run, "--limit", "3")
    assert summary["counts"]["finished"] == 3
    res = records(run)
    assert sorted(res) == ["00000", "00001", "00002"]
    assert res["00001"]["category"] == "counting" and res["00001"]["meta"]["metadata"] == bf.GENEVAL_ROWS[1]
    lines = metadata.read_text().splitlines()
    for image_set, key in (("round0", "initial_image"), ("final", "best_image")):
        out = tmp_path / image_set
        done = export(monkeypatch, capsys, run, "geneval", image_set, out)
        assert done["written"] == 3 and done["left_out"] == {}
        # evaluate_images.py: digit-named folders, metadata.jsonl read with json.load, samples/\d+.png.
        assert sorted(p.name for p in out.iterdir()) == ["00000", "00001", "00002"]
        for index in range(3):
            folder = out / f"{index:05d}"
            # byte for byte what diffusers_generate.py writes: json.dump(metadata, fp) of the N-th line
            written = (folder / "metadata.jsonl").read_text()
            assert written == lines[index] == json.dumps(bf.GENEVAL_ROWS[index])
            samples = [p.name for p in (folder / "samples").iterdir()]
            assert samples == ["00000.png"] and all(re.match(r"\d+\.png", s) for s in samples)
            expected = image_of(run, res[f"{index:05d}"], key)
            assert (folder / "samples" / "00000.png").read_bytes() == expected
    assert (tmp_path / "round0" / "00000" / "samples" / "00000.png").read_bytes() != (
        tmp_path / "final" / "00000" / "samples" / "00000.png"
    ).read_bytes()
    base = records(run, "baseline")
    done = export(monkeypatch, capsys, run, "geneval", "baseline", tmp_path / "baseline")
    assert done["written"] == 3
    assert (tmp_path / "baseline" / "00002" / "samples" / "00000.png").read_bytes() == image_of(
        run, base["00002"], "best_image"
    )


def test_dpg_round_trip_with_shards(monkeypatch, capsys, scripted, tmp_path: Path) -> None:
    csv_file = bf.write_dpg(tmp_path / "dpg_bench")
    run = tmp_path / "run"
    for shard in ("0/2", "1/2"):
        gcr(monkeypatch, capsys, "bench", f"dpg:{csv_file}", "--max-rounds", "2", "--target", "1",
            "--no-cache", "--shard", shard, "--out", str(run), "--json")  # fmt: skip
    res = {}
    for path in (run / "shards").glob("*/results.jsonl"):
        res.update({r["id"]: r for r in map(json.loads, path.read_text().splitlines())})
    assert sorted(res) == ["1", "partiprompts12"]
    assert res["1"]["meta"]["categories"] == ["entity", "attribute"]
    out = tmp_path / "dpg-final"
    done = export(monkeypatch, capsys, run, "dpg", "final", out)
    # compute_dpg_bench.py: every file of --image-root-path, keyed by basename.split('.')[0] == item_id
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "partiprompts12.png"] == sorted(done["files"])
    assert {p.name.split(".")[0] for p in out.iterdir()} == set(bf.DPG_ITEMS)
    assert (out / "1.png").read_bytes() == image_of(run, res["1"], "best_image")
    # Without --json: one line of what was written, the left-out prompts on stderr, nothing wrapped.
    code, stdout, err = gcr(monkeypatch, capsys, "bench", "export", str(run), "--layout", "dpg",
                            "--set", "baseline", "--out", str(tmp_path / "dpg-plain"))  # fmt: skip
    assert code == 0 and f"0 baseline images written to {tmp_path / 'dpg-plain'} (dpg layout)" in stdout
    assert (
        "left out partiprompts12: no finished best-of-n baseline (run gcr bench with --baseline best-of-n)"
        in err
    )
    # No baseline was run: the set is empty and each prompt says why.
    done = export(monkeypatch, capsys, run, "dpg", "baseline", tmp_path / "dpg-base")
    assert done["written"] == 0 and set(done["left_out"]) == {"1", "partiprompts12"}
    assert "best-of-n" in done["left_out"]["1"]


def test_t2icompbench_round_trip(monkeypatch, capsys, scripted, tmp_path: Path) -> None:
    folder = bf.write_t2icompbench(tmp_path / "T2I-CompBench")
    (folder / "shape_val.txt").write_text("a round_table and a square chair\n")
    run = tmp_path / "run"
    bench(monkeypatch, capsys, f"t2icompbench:{tmp_path / 'T2I-CompBench'}", run)
    res = records(run)
    assert sorted(res) == [
        "color-0001",
        "color-0002",
        "color-0003",
        "shape-0001",
        "spatial-0001",
        "spatial-0002",
    ]
    out = tmp_path / "t2i"
    done = export(monkeypatch, capsys, run, "t2icompbench", "round0", out)
    # The prompt with "_" ran, but no scorer could read its name back: left out, with the reason.
    assert (
        done["written"] == 5
        and list(done["left_out"]) == ["shape-0001"]
        and "'_'" in done["left_out"]["shape-0001"]
    )
    assert sorted(p.name for p in out.iterdir()) == ["color", "spatial"]
    # inference_eval.py: <outdir>/samples/f"{prompt}_{count:06}.png", one running count per folder
    assert sorted(p.name for p in (out / "color" / "samples").iterdir()) == [
        "a blue bench and a green bowl_000001.png",
        "a green bench and a blue bowl_000000.png",
        "a red car and a blue cup_000002.png",
    ]
    spatial = sorted(p.name for p in (out / "spatial" / "samples").iterdir())
    assert spatial == ["a cat on the left of a dog_000001.png", "a horse on the right of a car_000000.png"]
    # BLIP_vqa.py reads the prompt back as split('_')[0] and orders by the number after the last '_'.
    names = sorted(spatial, key=lambda x: int(x.split("_")[-1].split(".")[0]))
    assert [n.split("_")[0] for n in names] == ["a horse on the right of a car", "a cat on the left of a dog"]
    assert (out / "color" / "samples" / "a red car and a blue cup_000002.png").read_bytes() == image_of(
        run, res["color-0003"], "initial_image"
    )


@pytest.mark.parametrize("kind", ["parquet", "disk"])
def test_gedit_round_trip(monkeypatch, capsys, scripted, tmp_path: Path, kind: str) -> None:
    from PIL import Image

    dataset = bf.write_gedit(tmp_path / "GEdit-Bench", kind)
    run = tmp_path / "run"
    summary = bench(monkeypatch, capsys, f"gedit-en:{dataset}", run)
    assert summary["counts"]["finished"] == 2
    res = records(run)
    en_keys = [row[0] for row in bf.GEDIT_ROWS if row[2] == "en"]
    assert sorted(res) == sorted(f"en-{k}" for k in en_keys)
    # The model edited input_image_raw (48x32), as generate_image_example.py feeds it.
    with Image.open(run / "inputs" / f"en-{en_keys[0]}" / "source-0.png") as src:
        assert src.size == (48, 32)
    # Without the dataset the SRCIMG files cannot be written: a clear error, nothing half-done.
    code, _, err = gcr(monkeypatch, capsys, "bench", "export", str(run), "--layout", "gedit", "--out",
                       str(tmp_path / "x"))  # fmt: skip
    assert code == 1 and "--benchmark gedit:PATH" in " ".join(err.split())
    results = tmp_path / "results"
    for image_set in ("round0", "final", "baseline"):
        export(monkeypatch, capsys, run, "gedit", image_set, results, "--benchmark", f"gedit-en:{dataset}")
    # EVAL.md: results/<method>/fullset/<task_type>/<lang>/<key>.png beside <key>_SRCIMG.png
    assert sorted(p.name for p in results.iterdir()) == ["gcr-baseline", "gcr-final", "gcr-round0"]
    for key, task_type, lang, _, _ in bf.GEDIT_ROWS:
        folder = results / "gcr-final" / "fullset" / task_type / lang
        if lang == "cn":
            assert not folder.exists()
            continue
        assert sorted(p.name for p in folder.iterdir()) == [f"{key}.png", f"{key}_SRCIMG.png"]
        assert (folder / f"{key}.png").read_bytes() == image_of(run, res[f"en-{key}"], "best_image")
        with Image.open(folder / f"{key}_SRCIMG.png") as srcimg:
            assert srcimg.size == (16, 16)  # the dataset's input_image, not the raw one
    # The wrong dataset is refused.
    code, _, err = gcr(monkeypatch, capsys, "bench", "export", str(run), "--layout", "gedit", "--out",
                       str(tmp_path / "y"), "--benchmark", f"gedit-cn:{dataset}")  # fmt: skip
    assert code == 1 and "is not the prompt set" in " ".join(err.split())


def test_imgedit_round_trip(monkeypatch, capsys, scripted, tmp_path: Path) -> None:
    edit_json = bf.write_imgedit(tmp_path / "ImgEdit")
    run = tmp_path / "run"
    bench(monkeypatch, capsys, f"imgedit:{edit_json}", run, "--limit", "2")
    res = records(run)
    assert sorted(res) == ["1082", "673"] and res["673"]["category"] == "style"
    out = tmp_path / "edited_images"
    export(monkeypatch, capsys, run, "imgedit", "final", out)
    # basic_bench.py: <result_img_folder>/f"{key}.png"; --edit_json lists exactly the exported keys
    assert sorted(p.name for p in out.iterdir()) == ["1082.png", "673.png", "basic_edit.json"]
    assert json.loads((out / "basic_edit.json").read_text()) == {
        k: bf.IMGEDIT_ENTRIES[k] for k in ("1082", "673")
    }
    assert (out / "673.png").read_bytes() == image_of(run, res["673"], "best_image")


def test_export_refuses_a_run_of_another_benchmark(monkeypatch, capsys, scripted, tmp_path: Path) -> None:
    metadata = bf.write_geneval(tmp_path / "geneval")
    run = tmp_path / "run"
    bench(monkeypatch, capsys, f"geneval:{metadata}", run, "--limit", "1")
    code, _, err = gcr(monkeypatch, capsys, "bench", "export", str(run), "--layout", "dpg", "--out",
                       str(tmp_path / "o"))  # fmt: skip
    assert code == 1 and "was not read with the dpg reader" in " ".join(err.split())
    code, _, err = gcr(monkeypatch, capsys, "bench", "export", str(tmp_path), "--layout", "dpg", "--out",
                       str(tmp_path / "o"))  # fmt: skip
    assert code == 1 and "bench.json is missing" in " ".join(err.split())
    code, _, err = gcr(monkeypatch, capsys, "bench", "export", str(run), "--layout", "geneval",
                       "--set", "best", "--out", str(tmp_path / "o"))  # fmt: skip
    assert code == 1 and "unknown set 'best'" in err
