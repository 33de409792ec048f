"""Independent judges: score gcr's images with something other than the critic that drove the loop.

Main entry points::

    from gcr.judges import load_judge

    judge = load_judge("viescore:https://api.openai.com/v1,model=gpt-4.1")
    result = await judge.judge("a red cube on a blue sphere", image)
    result.score, result.subscores["overall"]

Spec syntax and the built-in kinds are documented in ``docs/judges.md``.
Names are imported lazily, so ``import gcr.judges`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcr.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gcr.judges.base import Judge, JudgeResult, JudgeSpec, parse_judge_spec
    from gcr.judges.registry import (
        available_judges,
        get_judge_factory,
        load_judge,
        register_judge,
        unregister_judge,
    )
    from gcr.judges.rubric import Rubric, load_rubric
    from gcr.judges.runner import JudgePanel, JudgeVerdict

_EXPORTS: dict[str, str] = {
    "Judge": "gcr.judges.base",
    "JudgeResult": "gcr.judges.base",
    "JudgeSpec": "gcr.judges.base",
    "parse_judge_spec": "gcr.judges.base",
    "available_judges": "gcr.judges.registry",
    "get_judge_factory": "gcr.judges.registry",
    "load_judge": "gcr.judges.registry",
    "register_judge": "gcr.judges.registry",
    "unregister_judge": "gcr.judges.registry",
    "Rubric": "gcr.judges.rubric",
    "load_rubric": "gcr.judges.rubric",
    "JudgePanel": "gcr.judges.runner",
    "JudgeVerdict": "gcr.judges.runner",
}

__all__ = [
    "Judge",
    "JudgePanel",
    "JudgeResult",
    "JudgeSpec",
    "JudgeVerdict",
    "Rubric",
    "available_judges",
    "get_judge_factory",
    "load_judge",
    "load_rubric",
    "parse_judge_spec",
    "register_judge",
    "unregister_judge",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
