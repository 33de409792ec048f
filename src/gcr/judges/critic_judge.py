"""A RationalRewards-format critic used as a judge (another checkpoint, or another temperature).

It reuses :mod:`gcr.critic` whole: the same prompt templates, parser, re-ask and
normalized reward, on an OpenAI-compatible server or in-process. Its score is
the critic's normalized reward, (mean of the 1–4 dimension scores − 1) / 3; its
sub-scores are the dimension scores on the 1–4 scale (N/A dimensions left out).

Spec: ``critic:URL_OR_MODEL[,model=NAME][,temperature=T][,max_tokens=N]
[,dimensions=tf,pq][,template=PATH][,timeout=S][,max_retries=N][,concurrency=N]
[,device=D][,dtype=T]``. With the same model as the loop's critic, a judge at
another temperature still shares its blind spots: prefer another checkpoint or
a rubric judge when the point is independence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from PIL import Image

from gcr.critic.backends.base import SamplingParams
from gcr.critic.critic import Critic
from gcr.critic.defaults import API_KEY_ENV, DEFAULT_MAX_PIXELS, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S
from gcr.critic.scoring import RewardSpec, normalized_reward
from gcr.errors import (
    ConfigError,
    CriticError,
    CriticUnavailableError,
    CritiqueParseError,
    JudgeError,
    JudgeResponseError,
    JudgeUnavailableError,
    RewardError,
)
from gcr.judges.base import JudgeResult, Options
from gcr.task import Task


class CriticJudge:
    """A :class:`~gcr.judges.base.Judge` backed by a :class:`~gcr.critic.critic.Critic`."""

    def __init__(self, critic: Critic, *, reward_spec: RewardSpec | None = None, where: str = "") -> None:
        self.critic = critic
        self.reward_spec = reward_spec
        s = critic.sampling
        templates = hashlib.sha256(
            "".join(critic.template_digest(m, t) for m in ("pointwise",) for t in Task).encode()
        ).hexdigest()[:12]
        spec = self.reward_spec
        if spec is not None and spec.weights is not None:
            dims = str(spec)  # weights change the score, so cached verdicts must key on them too
        elif spec is None or spec.dimensions is None:
            dims = "all"
        else:
            dims = ",".join(d.value for d in spec.dimensions)
        self.identity = (
            f"critic:{critic.model_id}@{where or 'local'};templates={templates};"
            f"temperature={s.temperature:g};max_tokens={s.max_tokens};top_p={s.top_p};dimensions={dims};"
            f"max_pixels={getattr(critic.backend, 'max_pixels', None)}"
        )

    def __repr__(self) -> str:
        return f"CriticJudge({self.identity!r})"

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        try:
            critique = await self.critic.acritique(prompt, image, sources=sources)
        except CritiqueParseError as exc:
            raise JudgeResponseError(f"judge {self.critic.model_id}: {exc}", exc.raw_text) from None
        except CriticUnavailableError as exc:
            raise JudgeUnavailableError(f"judge {self.critic.model_id}: {exc}") from None
        except CriticError as exc:
            raise JudgeError(f"judge {self.critic.model_id}: {exc}") from None
        try:
            score = normalized_reward(critique, self.reward_spec)
        except RewardError as exc:
            raise JudgeResponseError(f"judge {self.critic.model_id}: {exc}", critique.raw_text) from None
        subscores = {k: v for k, v in critique.scores.items() if v is not None}
        return JudgeResult(score=score, subscores=subscores, raw=critique.raw_text, judge=self.identity)

    async def aclose(self) -> None:
        await self.critic.aclose()


def critic_judge(target: str, **options: Any) -> CriticJudge:
    """``critic:TARGET,...``: build a critic judge (see the module docstring for the options)."""
    from gcr.critic.loading import is_server_url, load_critic

    spec = f"critic:{target}"
    opts = Options(spec, options)
    temperature = opts.float("temperature", 0.1)
    max_tokens = opts.int("max_tokens", 2048)
    dims = opts.str("dimensions")
    template = opts.str("template")
    remote = bool(target) and is_server_url(target)
    kwargs: dict[str, Any] = {
        "model": opts.str("model"),
        "api_key_env": opts.str("api_key_env", API_KEY_ENV),
        "timeout": opts.float("timeout", DEFAULT_TIMEOUT_S),
        "max_retries": opts.int("max_retries", DEFAULT_MAX_RETRIES),
        "max_pixels": opts.int("max_pixels", DEFAULT_MAX_PIXELS),
    }
    concurrency = opts.int("concurrency")
    if concurrency is not None:
        kwargs["max_concurrency"] = concurrency
    task = opts.str("task")
    if not remote:
        kwargs.update(device=opts.str("device"), dtype=opts.str("dtype"))
    opts.done()
    assert temperature is not None and max_tokens is not None
    if template is not None and task is None:
        raise ConfigError(
            f"judge {spec}: a template option needs task=t2i or task=edit (which template it is)"
        )
    templates = {("pointwise", Task.parse(task)): template} if template is not None else None
    reward_spec = RewardSpec.parse(dims) if dims else None
    try:
        critic = load_critic(
            target or None,
            task=task,
            sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens),
            templates=templates,
            **kwargs,
        )
    except CriticUnavailableError as exc:
        raise JudgeUnavailableError(f"judge {spec}: {exc}") from None
    except ConfigError as exc:  # e.g. a server with several models: the judge spec's option names it
        from gcr.judges.vlm import _option_words

        raise ConfigError(f"judge {spec}: {_option_words(exc)}") from None
    return CriticJudge(critic, reward_spec=reward_spec, where=target or "default")
