"""Batch runs of gcr: ``gcr bench`` (refinement over a prompt set) and ``gcr eval`` (critic accuracy).

``gcr bench`` lives in these modules, each with one job:

* :mod:`gcr.bench.prompt_set`: the prompt set (its cases); :mod:`gcr.bench.prompt_files` and
  :mod:`gcr.bench.builtin`: reading one (files, edit folders, built-ins);
* :mod:`gcr.bench.pipeline`: :func:`~gcr.bench.pipeline.run_bench`, the pipelined, resumable runner,
  over :mod:`gcr.bench.stages` (the shared generator worker and the bounded critic);
* :mod:`gcr.bench.folder`: the benchmark folder (its layout, settings and result files);
* :mod:`gcr.bench.prompt_records`: the result record of one prompt's run (or failure);
* :mod:`gcr.bench.baseline`: the equal-compute best-of-n baseline;
* :mod:`gcr.bench.shard`: one shard of the prompts per process (``accelerate launch``);
* :mod:`gcr.bench.stats`, :mod:`gcr.bench.report`, :mod:`gcr.bench.plots`: summary figures and the report.

``gcr eval`` is the :mod:`gcr.bench.eval` subpackage. Nothing is imported here, so that
``import gcr.bench.eval`` stays light.
"""
