"""What the one I/O layer costs: JSONL log appends and reads, and atomic writes, against plain file calls.

Appends: :class:`gcr.io.JsonlLog` (one ``os.write`` per record on an ``O_APPEND``
descriptor, kept open) against a text file opened once and flushed per record
(what ``gcr bench``/``gcr eval`` did before) and against opening the file for
every record (what the PARROT job log did before). Reads: ``JsonlLog.records()``
(binary ``readline`` with a line-size limit and the recovery rule) against
``read_text().splitlines()`` + ``json.loads``. Atomic writes:
``write_text_atomic`` with and without ``durable`` against ``Path.write_text`` and
the ``NamedTemporaryFile`` + ``os.replace`` the run folder used before.
Each figure is the median of ``--repeats`` runs in a fresh temporary folder;
ratios are to the plain call in the same run.

Run: ``python benchmarks/io_logs.py [--records 20000] [--size 600] [--repeats 5]``. No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gcr.io import JsonlLog, write_text_atomic


def _median_s(fn: Callable[[Path], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="gcr-io-bench-") as folder:
            start = time.perf_counter()
            fn(Path(folder))
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _named_temporary(path: Path, text: str) -> None:
    opts = {"dir": path.parent, "suffix": ".tmp", "delete": False, "encoding": "utf-8"}
    with tempfile.NamedTemporaryFile("w", **opts) as f:
        f.write(text)
    os.replace(f.name, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--size", type=int, default=600, help="bytes of padding per record")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--files", type=int, default=500, help="files per atomic-write run")
    args = parser.parse_args()
    records = [{"id": f"p{i:06d}", "status": "ok", "pad": "x" * args.size} for i in range(args.records)]

    def log_append(folder: Path) -> None:
        with JsonlLog(folder / "r.jsonl") as log:
            for r in records:
                log.append(r)

    def text_flush(folder: Path) -> None:
        with (folder / "r.jsonl").open("a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                fh.flush()

    def open_each(folder: Path) -> None:
        path = folder / "r.jsonl"
        for r in records:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")

    body = "".join(json.dumps(r) + "\n" for r in records)

    def log_read(folder: Path) -> None:
        path = folder / "r.jsonl"
        path.write_text(body, encoding="utf-8")
        JsonlLog(path).records()

    def plain_read(folder: Path) -> None:
        path = folder / "r.jsonl"
        path.write_text(body, encoding="utf-8")
        [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]

    text = json.dumps(records[0], indent=2) + "\n"

    def many(write: Callable[[Path], None]) -> Callable[[Path], None]:
        def run(folder: Path) -> None:
            for i in range(args.files):
                write(folder / f"f{i}.json")

        return run

    rows = []
    plain_append = _median_s(text_flush, args.repeats)
    rows.append(("append: text file, flush per record (old bench/eval)", plain_append, 1.0))
    t = _median_s(open_each, args.repeats)
    rows.append(("append: open per record (old PARROT log)", t, t / plain_append))
    t = _median_s(log_append, args.repeats)
    rows.append(("append: JsonlLog", t, t / plain_append))
    plain = _median_s(plain_read, args.repeats)
    rows.append(("read: read_text + splitlines + json.loads", plain, 1.0))
    t = _median_s(log_read, args.repeats)
    rows.append(("read: JsonlLog.records()", t, t / plain))
    plain = _median_s(many(lambda p: p.write_text(text, encoding="utf-8")), args.repeats)
    rows.append(("whole file: Path.write_text", plain, 1.0))
    t = _median_s(many(lambda p: _named_temporary(p, text)), args.repeats)
    rows.append(("whole file: NamedTemporaryFile + os.replace (old)", t, t / plain))
    t = _median_s(many(lambda p: write_text_atomic(p, text)), args.repeats)
    rows.append(("whole file: write_text_atomic", t, t / plain))
    t = _median_s(many(lambda p: write_text_atomic(p, text, durable=True)), args.repeats)
    rows.append(("whole file: write_text_atomic(durable=True)", t, t / plain))

    print(
        f"{args.records} records of ~{args.size + 40} bytes; {args.files} whole files; "
        f"median of {args.repeats}"
    )
    for name, seconds, ratio in rows:
        print(f"{name:<56} {seconds * 1000:9.1f} ms  x{ratio:5.2f}")


if __name__ == "__main__":
    main()
