"""Critic prompt templates: loading, validation and rendering into a :class:`ChatRequest`.

A template is a markdown file with a system part and a user part (format in
``src/gcr/prompts/README.md``)::

    <!-- system -->
    You are ...
    <!-- user -->
    User request: {request}
    Image A: <image:A>
    ...

``{request}`` is replaced by the user's request (no other braces are special).
Image slots mark where images go in the user message: ``<image:source>`` (all
source images of an edit, in order), ``<image:candidate>`` (pointwise) and
``<image:A>`` / ``<image:B>`` (pairwise). The user text is split at each slot,
so the rendered parts alternate text and image, images in the order source(s),
A, B.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from PIL import Image

from gcr.critic.backends.base import ChatRequest
from gcr.errors import ConfigError, InputError
from gcr.image_input import ImageInput
from gcr.task import Task

#: An image as the templates take it: PIL pixels, or an image with encoded bytes/a file.
AnyImage = Image.Image | ImageInput

Mode = Literal["pointwise", "pairwise"]

REQUEST_PLACEHOLDER = "{request}"
SYSTEM_MARKER = "<!-- system -->"
USER_MARKER = "<!-- user -->"

SLOT_SOURCE = "source"
SLOT_CANDIDATE = "candidate"
SLOT_A = "A"
SLOT_B = "B"

_SLOT_RE = re.compile(r"<image:([^<>\s]*)>")
_BARE_IMAGE_RE = re.compile(r"<image>")
_MARKER_RE = re.compile(r"^[ \t]*<!--\s*(system|user)\s*-->[ \t]*$", re.MULTILINE | re.IGNORECASE)
# Text placed between two consecutive images so that parts keep alternating text/image.
_IMAGE_SEPARATOR = "\n"


def required_slots(mode: Mode, task: Task) -> tuple[str, ...]:
    """The image slots a ``mode``/``task`` template must contain, in the order they must appear."""
    images = (SLOT_CANDIDATE,) if mode == "pointwise" else (SLOT_A, SLOT_B)
    return ((SLOT_SOURCE,) if task is Task.EDIT else ()) + images


@dataclass(frozen=True)
class CritiqueTemplate:
    """A validated critic prompt: system text and user text with ``{request}`` and image slots."""

    name: str
    mode: Mode
    task: Task
    system: str
    user: str
    #: Where the template was read from (a file path, or ``gcr.prompts/<file>`` for built-ins).
    path: str
    #: sha256 of the file contents; part of critique cache keys.
    digest: str

    @property
    def slots(self) -> tuple[str, ...]:
        return required_slots(self.mode, self.task)


def _check_mode(mode: str) -> Mode:
    if mode not in ("pointwise", "pairwise"):
        raise InputError(f"unknown critique mode {mode!r}: use 'pointwise' or 'pairwise'")
    return mode  # type: ignore[return-value]


def builtin_template_file(mode: Mode, task: Task) -> str:
    """File name of the built-in template for ``mode`` and ``task`` inside ``gcr.prompts``."""
    return f"critic_{mode}_{task.value}.md"


def load_template(
    mode: Literal["pointwise", "pairwise"], task: Task, path: str | Path | None = None
) -> CritiqueTemplate:
    """Load the built-in template for ``mode``/``task``, or the user's file at ``path``.

    A user file is checked like the built-ins: it must hold a user part with
    ``{request}`` and exactly the image slots the mode and task need, in order.
    Anything missing or extra is refused with a :class:`ConfigError` naming it.
    """
    mode = _check_mode(mode)
    task = Task.parse(task)
    if path is None:
        return _load_builtin(mode, task)
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"critic template not found: {p}")
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"critic template {p} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read critic template {p}: {exc}") from None
    return _build(p.stem, mode, task, text, str(p), raw)


@lru_cache(maxsize=8)
def _load_builtin(mode: Mode, task: Task) -> CritiqueTemplate:
    file_name = builtin_template_file(mode, task)
    raw = resources.files("gcr.prompts").joinpath(file_name).read_bytes()
    return _build(Path(file_name).stem, mode, task, raw.decode("utf-8"), f"gcr.prompts/{file_name}", raw)


def _build(name: str, mode: Mode, task: Task, text: str, where: str, raw: bytes) -> CritiqueTemplate:
    system, user = _split_parts(text, where)
    _validate(system, user, mode, task, where)
    return CritiqueTemplate(
        name=name,
        mode=mode,
        task=task,
        system=system,
        user=user,
        path=where,
        digest=hashlib.sha256(raw).hexdigest(),
    )


def _split_parts(text: str, where: str) -> tuple[str, str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    markers = list(_MARKER_RE.finditer(text))
    kinds = [m.group(1).lower() for m in markers]
    if kinds.count("user") != 1 or kinds.count("system") > 1:
        raise ConfigError(
            f"critic template {where}: needs one '{USER_MARKER}' line (and at most one "
            f"'{SYSTEM_MARKER}' line before it); found {len(markers)} marker line(s)"
        )
    if kinds == ["user", "system"]:
        raise ConfigError(
            f"critic template {where}: the '{SYSTEM_MARKER}' part must come before '{USER_MARKER}'"
        )
    if text[: markers[0].start()].strip():
        raise ConfigError(
            f"critic template {where}: text before the first marker line; start the file with "
            f"'{SYSTEM_MARKER}' or '{USER_MARKER}'"
        )
    if len(markers) == 1:
        return "", text[markers[0].end() :].strip()
    return text[markers[0].end() : markers[1].start()].strip(), text[markers[1].end() :].strip()


def _validate(system: str, user: str, mode: Mode, task: Task, where: str) -> None:
    problems: list[str] = []
    needed = required_slots(mode, task)
    if not user:
        problems.append("the user part is empty")
    if REQUEST_PLACEHOLDER not in user:
        problems.append(f"missing the {REQUEST_PLACEHOLDER} placeholder in the user part")
    if _BARE_IMAGE_RE.search(system + user):
        problems.append("bare '<image>' tags are not slots; name them, e.g. " + _slot_list(needed))
    if _SLOT_RE.search(system):
        problems.append("image slots belong in the user part, not the system part")
    found = [m.group(1) for m in _SLOT_RE.finditer(user)]
    for slot in needed:
        if slot not in found:
            problems.append(f"missing image slot <image:{slot}>")
        elif found.count(slot) > 1:
            problems.append(f"image slot <image:{slot}> appears {found.count(slot)} times (once is allowed)")
    unexpected = sorted({s for s in found if s not in needed})
    if unexpected:
        problems.append(
            "unexpected image slot(s) "
            + ", ".join(f"<image:{s}>" for s in unexpected)
            + f" for a {mode} {task.value} template"
        )
    if not problems and [s for s in found if s in needed] != list(needed):
        problems.append("image slots must appear in the order " + _slot_list(needed))
    if problems:
        raise ConfigError(
            f"critic template {where} is not a valid {mode} {task.value} template: "
            + "; ".join(problems)
            + f" (it needs {REQUEST_PLACEHOLDER} and {_slot_list(needed)})"
        )


def _slot_list(slots: Sequence[str]) -> str:
    return ", ".join(f"<image:{s}>" for s in slots)


def render_pointwise(
    t: CritiqueTemplate, request: str, image: AnyImage, sources: Sequence[AnyImage] = ()
) -> ChatRequest:
    """Build the chat request asking the critic to judge ``image`` for ``request``."""
    if t.mode != "pointwise":
        raise InputError(f"template {t.name!r} is a {t.mode} template; use render_pairwise")
    _check_image(image, "the candidate image")
    return _render(t, request, sources, {SLOT_CANDIDATE: [image]})


def render_pairwise(
    t: CritiqueTemplate,
    request: str,
    image_a: AnyImage,
    image_b: AnyImage,
    sources: Sequence[AnyImage] = (),
) -> ChatRequest:
    """Build the chat request asking the critic to compare ``image_a`` with ``image_b``."""
    if t.mode != "pairwise":
        raise InputError(f"template {t.name!r} is a {t.mode} template; use render_pointwise")
    _check_image(image_a, "image A")
    _check_image(image_b, "image B")
    return _render(t, request, sources, {SLOT_A: [image_a], SLOT_B: [image_b]})


def _check_image(image: object, what: str) -> None:
    if not isinstance(image, Image.Image | ImageInput):
        raise InputError(f"{what} must be a PIL image, got {type(image).__name__}")


def _render(
    t: CritiqueTemplate,
    request: str,
    sources: Sequence[AnyImage],
    images: dict[str, list[AnyImage]],
) -> ChatRequest:
    if not isinstance(request, str) or not request.strip():
        raise InputError("the request is empty: give the prompt or instruction the image was made for")
    if isinstance(sources, Image.Image | ImageInput) or not isinstance(sources, Sequence):
        raise InputError("sources must be a sequence (list or tuple) of PIL images")
    for i, src in enumerate(sources):
        _check_image(src, f"source image {i + 1}")
    if t.task is Task.EDIT and not sources:
        raise InputError("an edit critique needs the source image(s) that were edited")
    if t.task is Task.T2I and sources:
        raise InputError("a text-to-image critique takes no source images; use the edit task for edits")
    images = {SLOT_SOURCE: list(sources), **images}
    request = request.strip()

    parts: list[str | AnyImage] = []

    def add_text(text: str) -> None:
        text = text.replace(REQUEST_PLACEHOLDER, request)
        if not text:
            return
        if parts and isinstance(parts[-1], str):
            parts[-1] += text
        else:
            parts.append(text)

    def add_image(img: AnyImage) -> None:
        if parts and isinstance(parts[-1], Image.Image | ImageInput):
            parts.append(_IMAGE_SEPARATOR)
        parts.append(img)

    pos = 0
    for m in _SLOT_RE.finditer(t.user):
        add_text(t.user[pos : m.start()])
        for img in images[m.group(1)]:
            add_image(img)
        pos = m.end()
    add_text(t.user[pos:])
    return ChatRequest(system=t.system.replace(REQUEST_PLACEHOLDER, request), parts=tuple(parts))
