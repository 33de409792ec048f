"""What the diffusers adapter costs on top of the pipeline it wraps, and proof that it loads once.

For each tiny pipeline kind, the same generation (prompt, size, steps, guidance,
one seeded ``torch.Generator`` per image, source image for edit models) is run
``--repeats`` times two ways, alternating so that machine noise hits both alike:

* direct: ``pipe(**kwargs)`` on a pipeline loaded with ``DiffusionPipeline.from_pretrained``;
* adapter: ``DiffusersGenerator.generate(request)`` on the same folder.

It prints the best and the median wall time of each and their ratios (timed
without tracing; the best is the least disturbed by other load on the machine),
the adapter's own work per call (its total time minus the pipeline call: the
overhead itself, free of the noise in the two totals), and, in separate runs,
the peak of Python heap allocations during a call (``tracemalloc``) for each and
their ratio. Torch tensor memory is the pipeline's
own and identical on both paths (same shapes, same dtype, same calls), so it is
not traced; the process's peak RSS is printed once for scale.

Then it shows that a second adapter call, and a second adapter object on the same
model, reuse the loaded pipeline: ``from_pretrained`` call counts and the load time
each call reported.

Run: ``python benchmarks/generator_overhead.py [--kinds sd flux flux-kontext instruct-pix2pix]
[--repeats 7] [--steps 4] [--size 64] [--images 2]``. No assertions.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from gcr.dev.tiny_pipelines import PIPELINE_KINDS, build_tiny_pipeline
from gcr.generators.base import GenerationRequest
from gcr.generators.diffusers_adapter import DiffusersGenerator
from gcr.generators.loading import PipelineCache

EDIT_KINDS = ("flux-kontext", "instruct-pix2pix")


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call (no tracing running, which would slow Python code)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def traced_peak(fn: Callable[[], Any]) -> int:
    """Peak traced Python allocation (bytes) during one call."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def source(size: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def direct_kwargs(kind: str, gen: DiffusersGenerator, size: int, steps: int, images: int) -> dict[str, Any]:
    """The pipeline arguments the adapter would pass, written out by hand."""
    kwargs: dict[str, Any] = {
        "prompt": "a red cat on a wooden table",
        "num_inference_steps": steps,
        "num_images_per_prompt": images,
        gen.preset.guidance_arg: gen.preset.guidance,
        "output_type": "pil",
    }
    if kind != "instruct-pix2pix":
        kwargs.update(height=size, width=size)
    if kind in EDIT_KINDS:
        kwargs["image"] = [source(size)] * images if gen.preset.source_per_image else source(size)
    if kind == "flux-kontext":
        kwargs.update(max_area=size * size, _auto_resize=False)
    kwargs.update(gen.preset.call_defaults)
    return kwargs


def bench_kind(kind: str, folder: Path, args: argparse.Namespace) -> None:
    cache = PipelineCache()
    gen = DiffusersGenerator(str(folder), cache=cache)
    request = GenerationRequest(
        "a red cat on a wooden table",
        width=args.size,
        height=args.size,
        steps=args.steps,
        num_images=args.images,
        source_images=[source(args.size)] if kind in EDIT_KINDS else [],
    )
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    kwargs = direct_kwargs(kind, gen, args.size, args.steps, args.images)

    def run_direct() -> Any:
        generators = [torch.Generator("cpu").manual_seed(s) for s in request.seeds()]
        return pipe(generator=generators, **kwargs).images

    gen.generate(request)  # load and warm up both paths before timing
    run_direct()
    direct_t, adapter_t, own_t = [], [], []
    for _ in range(args.repeats):  # alternate, so that load spikes hit both paths alike
        direct_t.append(timed(run_direct))
        result = gen.generate(request)
        adapter_t.append(result.timings["total_s"])
        own_t.append(result.timings["total_s"] - result.timings["generate_s"])
    direct_m = [traced_peak(run_direct) for _ in range(2)]
    adapter_m = [traced_peak(lambda: gen.generate(request)) for _ in range(2)]
    d_min, a_min = min(direct_t), min(adapter_t)
    d_med, a_med = statistics.median(direct_t), statistics.median(adapter_t)
    d_m, a_m = statistics.median(direct_m), statistics.median(adapter_m)
    print(
        f"{kind:17s} best direct {d_min * 1000:7.1f} ms  adapter {a_min * 1000:7.1f} ms"
        f"  ratio {a_min / d_min:5.3f}"
        f" | median {d_med * 1000:7.1f} / {a_med * 1000:7.1f} ms  ratio {a_med / d_med:5.3f}"
        f" | adapter's own work {statistics.median(own_t) * 1000:5.2f} ms"
        f" | py-heap peak {d_m / 1e6:5.2f} / {a_m / 1e6:5.2f} MB  ratio {a_m / d_m:5.3f}"
    )


def show_no_reload(kind: str, folder: Path) -> None:
    loads: list[str] = []
    original = DiffusionPipeline.from_pretrained

    def counting(cls: Any, src: Any, *a: Any, **k: Any) -> Any:
        loads.append(str(src))
        return original(src, *a, **k)

    DiffusionPipeline.from_pretrained = classmethod(counting)  # type: ignore[method-assign]
    try:
        cache = PipelineCache()
        sources = [source(32)] if kind in EDIT_KINDS else []
        request = GenerationRequest("a red cat", width=32, height=32, steps=2, source_images=sources)
        first = DiffusersGenerator(str(folder), cache=cache)
        reports = [("first call", first.generate(request).timings["load_s"])]
        reports.append(("second call", first.generate(request).timings["load_s"]))
        second = DiffusersGenerator(str(folder), cache=cache)
        reports.append(("new adapter, same model", second.generate(request).timings["load_s"]))
        same = second.load() is first.load()
    finally:
        DiffusionPipeline.from_pretrained = original  # type: ignore[method-assign]
    for label, load_s in reports:
        print(f"  {label:26s} load_s = {load_s * 1000:7.1f} ms")
    print(f"  from_pretrained calls: {len(loads)}; cache.loads = {cache.loads}; same pipeline object: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(PIPELINE_KINDS), choices=PIPELINE_KINDS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=2)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads; {args.images} image(s) of {args.size}px, {args.steps} steps, "
        f"median of {args.repeats}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folders = {kind: build_tiny_pipeline(kind, Path(tmp) / kind) for kind in args.kinds}
        for kind, folder in folders.items():
            bench_kind(kind, folder, args)
        print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        kind = "flux" if "flux" in folders else args.kinds[0]
        print(f"loading once (tiny {kind}):")
        show_no_reload(kind, folders[kind])


if __name__ == "__main__":
    main()
