"""Scripted judge replies for the stub chat server: known scores per image, per rubric question.

A judge test wants to say "the judge gives image X these scores" and have a
real HTTP round trip happen. :class:`ScriptedJudge` is a responder for
:class:`~stubs.critic_server.StubCriticServer`: it finds which rubric question
a request asks (by the criteria named in its answer-format line), identifies
the candidate image by the colour of its pixels (the last image of the
request), and answers the JSON the rubric asks for. Unscripted images get the
``default`` scores, or an unreadable answer when ``default`` is None.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Mapping

from PIL import Image

from stubs.critic_server import RecordedRequest, StubReply

#: Scores of each question's criteria, e.g. {"semantic_consistency": {"prompt_following": 8}}.
Scores = Mapping[str, Mapping[str, float]]

_SCORES_LINE = re.compile(r'"scores": \{(.*?)\}\}', re.DOTALL)


def image_colour(url: str) -> tuple[int, int, int]:
    """The colour of the top-left pixel of a ``data:image/png;base64,...`` URL."""
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").getpixel((0, 0))


def asked_criteria(request: RecordedRequest) -> list[str]:
    """The criteria the request's answer-format line names, in order."""
    text = request.user_text()
    m = list(_SCORES_LINE.finditer(text))
    if not m:
        return []
    return re.findall(r'"([a-z_]+)": <number', m[-1].group(1))


class ScriptedJudge:
    """Answers rubric questions with scores looked up by the candidate image's colour."""

    def __init__(
        self,
        by_colour: Mapping[tuple[int, int, int], Mapping[str, float]],
        default: Mapping[str, float] | None = None,
        *,
        key: Callable[[tuple[int, int, int]], tuple[int, int, int]] | None = None,
    ) -> None:
        #: Criterion scores per colour, flat: {"prompt_following": 8, "naturalness": 6, ...}.
        self.by_colour = {tuple(k): dict(v) for k, v in by_colour.items()}
        self.default = None if default is None else dict(default)
        self.key = key or (lambda c: c)
        self.asked: list[tuple[tuple[int, int, int], list[str]]] = []

    def __call__(self, request: RecordedRequest) -> StubReply:
        urls = request.image_urls()
        criteria = asked_criteria(request)
        if not urls or not criteria:
            return StubReply.ok("I cannot tell what you are asking.")
        colour = self.key(image_colour(urls[-1]))
        self.asked.append((colour, criteria))
        table = self.by_colour.get(colour, self.default)
        if table is None:
            return StubReply.ok("This picture is lovely, I would give it high marks.")
        scores = {c: table[c] for c in criteria}
        return StubReply.ok(json.dumps({"reasoning": "scripted", "scores": scores}))
