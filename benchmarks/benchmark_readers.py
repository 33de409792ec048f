"""What reading an image-heavy benchmark costs: GEdit-Bench-shaped Parquet, read as ``gcr bench`` reads it.

Builds a Parquet file with GEdit-Bench's columns (two image columns of random
PNGs, ``--rows`` rows, row groups of ``--group`` rows), then measures:

1. loading the prompt set (``load_benchmark("gedit:...")``): text columns only,
   images left in the file; the Arrow memory held afterwards;
2. the same rows read whole (what loading would cost if images were decoded
   into the set), for comparison;
3. reading every case's source image in file order, as the pipeline does, with
   the row-group cache of :mod:`gcr.benchmarks.base` and without it (ratio).

Run: ``python benchmarks/benchmark_readers.py [--rows 200] [--group 50] [--size 256]``. No assertions.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

import gcr.benchmarks.base as base
from gcr.benchmarks import load_benchmark


def _png(rng: np.random.Generator, size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def build(folder: Path, rows: int, group: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    columns = {
        "task_type": pa.array(["background_change"] * rows),
        "key": pa.array([f"{i:032x}" for i in range(rows)]),
        "instruction": pa.array([f"Change the background, item {i}." for i in range(rows)]),
        "instruction_language": pa.array(["en" if i % 2 == 0 else "cn" for i in range(rows)]),
        "input_image": pa.array([{"bytes": _png(rng, size), "path": None} for _ in range(rows)], image),
        "input_image_raw": pa.array([{"bytes": _png(rng, size), "path": None} for _ in range(rows)], image),
        "Intersection_exist": pa.array([i % 3 == 0 for i in range(rows)]),
    }
    (folder / "data").mkdir(parents=True)
    path = folder / "data" / "train-00000-of-00001.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=group)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--group", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp), args.rows, args.group, args.size)
        mb = path.stat().st_size / 2**20
        print(f"file: {args.rows} rows, row groups of {args.group}, {args.size}px PNGs, {mb:.1f} MiB")

        before = pa.total_allocated_bytes()
        start = time.perf_counter()
        prompt_set = load_benchmark(f"gedit:{tmp}")
        load_s = time.perf_counter() - start
        held = (pa.total_allocated_bytes() - before) / 2**20
        print(f"load (text columns):   {load_s * 1000:8.1f} ms   Arrow memory held after: {held:6.1f} MiB")

        start = time.perf_counter()
        whole = pq.read_table(path)
        whole_s = time.perf_counter() - start
        whole_mb = whole.nbytes / 2**20
        print(f"read whole table:      {whole_s * 1000:8.1f} ms   Arrow memory: {whole_mb:6.1f} MiB")
        del whole

        def read_all() -> float:
            fresh = load_benchmark(f"gedit:{tmp}")
            start = time.perf_counter()
            for case in fresh.cases:
                case.sources[0].load()
            return time.perf_counter() - start

        cached = read_all()
        kept = base._CACHED_GROUPS
        base._CACHED_GROUPS = 0
        try:
            uncached = read_all()
        finally:
            base._CACHED_GROUPS = kept
        n = len(prompt_set)
        print(f"source images, file order, cache of {kept} groups: {cached / n * 1000:7.2f} ms per image")
        print(f"source images, file order, no cache:          {uncached / n * 1000:7.2f} ms per image")
        print(f"ratio no cache / cache: {uncached / cached:.1f}x")


if __name__ == "__main__":
    main()
