"""The teacher and predictor prompts of PARROT: loading, checking and rendering.

They use the critic's template format (``<!-- system -->`` / ``<!-- user -->``
parts, ``{request}``, image slots; see :mod:`gcr.critic.templates`) and its
renderer, plus a few placeholders of their own that are filled in first:

=========  ===========  ===================================================  =====================
kind       image slots  extra placeholders                                   built-in file
=========  ===========  ===================================================  =====================
anchor     source?,A,B  ``{preference}`` (the human verdict, in words)       teacher_anchor_<task>
project    source?,cand ``{candidate}``, ``{comparison}``, ``{scores}``      teacher_project_<task>
predict    source?,A,B  ``{rationale}`` (the comparison without verdicts)    predictor_<task>
=========  ===========  ===================================================  =====================

Users may pass their own files; they are checked for the slots and placeholders
their kind needs.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Literal

from gcr.critic.backends.base import ChatRequest
from gcr.critic.schema import TASK_DIMENSIONS, PairwiseCritique
from gcr.critic.templates import CritiqueTemplate, load_template, render_pairwise, render_pointwise
from gcr.errors import ConfigError
from gcr.task import Task
from gcr.training.parrot.answers import format_pairwise, format_score, strip_verdicts
from gcr.training.parrot.data import ItemImages, Label, PreferenceItem

Kind = Literal["anchor", "project", "predict"]

_MODES: dict[str, Literal["pointwise", "pairwise"]] = {
    "anchor": "pairwise",
    "project": "pointwise",
    "predict": "pairwise",
}
_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "anchor": ("{preference}",),
    "project": ("{candidate}", "{comparison}", "{scores}"),
    "predict": ("{rationale}",),
}
_FILES = {
    "anchor": "teacher_anchor_{task}.md",
    "project": "teacher_project_{task}.md",
    "predict": "predictor_{task}.md",
}

_PREFERENCE_TEXT: dict[str, str] = {
    "A": "the raters preferred Image A.",
    "B": "the raters preferred Image B.",
    "tie": "the raters found the two equally good (a tie).",
}


def load_parrot_template(kind: Kind, task: Task | str, path: str | Path | None = None) -> CritiqueTemplate:
    """Load the built-in ``kind`` template for ``task``, or the user's file at ``path``."""
    if kind not in _MODES:
        raise ConfigError(f"unknown PARROT template kind {kind!r}: use anchor, project or predict")
    task = Task.parse(task)
    if path is None:
        name = _FILES[kind].format(task=task.value)
        with resources.as_file(resources.files("gcr.prompts").joinpath(name)) as builtin:
            template = load_template(_MODES[kind], task, builtin)
        template = dataclasses.replace(template, path=f"gcr.prompts/{name}")
    else:
        template = load_template(_MODES[kind], task, path)
    missing = [p for p in _PLACEHOLDERS[kind] if p not in template.user]
    if missing:
        raise ConfigError(
            f"{kind} template {template.path} lacks the placeholder(s) {', '.join(missing)} in its user part"
        )
    return template


def _fill(template: CritiqueTemplate, values: dict[str, str]) -> CritiqueTemplate:
    user = template.user
    for key, value in values.items():
        # Text from a model must not be read as a slot or as the request placeholder.
        safe = value.replace("<image:", "<image :").replace("{request}", "{ request }")
        user = user.replace(key, safe)
    return dataclasses.replace(template, user=user)


def preference_text(label: Label) -> str:
    return _PREFERENCE_TEXT[label]


def render_anchor(template: CritiqueTemplate, item: PreferenceItem, images: ItemImages) -> ChatRequest:
    """The teacher request that shows both candidates and the known preference."""
    filled = _fill(template, {"{preference}": preference_text(item.label)})
    return render_pairwise(filled, item.request, images.a, images.b, images.sources)


def scores_text(critique: PairwiseCritique, candidate: Literal["A", "B"]) -> str:
    """One ``Header: score`` line per dimension, for the candidate being projected."""
    by_dim = {j.dimension: j for j in critique.judgements}
    lines = []
    for dim in TASK_DIMENSIONS[critique.task]:
        j = by_dim.get(dim)
        if j is not None:
            lines.append(f"- {dim.header}: {format_score(j.score_a if candidate == 'A' else j.score_b)}")
    return "\n".join(lines)


def render_projection(
    template: CritiqueTemplate,
    item: PreferenceItem,
    images: ItemImages,
    critique: PairwiseCritique,
    candidate: Literal["A", "B"],
) -> ChatRequest:
    """The teacher request that turns the comparison into a critique of one candidate."""
    filled = _fill(
        template,
        {
            "{candidate}": f"Image {candidate}",
            "{comparison}": format_pairwise(critique).strip(),
            "{scores}": scores_text(critique, candidate),
        },
    )
    image = images.candidate(candidate)
    return render_pointwise(filled, item.request, image, images.sources)


def render_predictor(
    template: CritiqueTemplate, item: PreferenceItem, images: ItemImages, critique: PairwiseCritique
) -> ChatRequest:
    """The predictor request: request, images and the rationale without any verdict."""
    filled = _fill(template, {"{rationale}": strip_verdicts(critique)})
    return render_pairwise(filled, item.request, images.a, images.b, images.sources)
