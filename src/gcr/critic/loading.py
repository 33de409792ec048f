"""Build a :class:`~gcr.critic.critic.Critic` from one string: a server URL, a folder, or a Hub id."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gcr.critic.backends.base import ChatBackend, SamplingParams
from gcr.critic.critic import Critic, TemplateSource
from gcr.critic.defaults import (
    API_KEY_ENV,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    default_critic_model,
)
from gcr.errors import ConfigError
from gcr.task import Task

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_server_url(spec: str) -> bool:
    return spec.strip().lower().startswith(("http://", "https://"))


def load_critic(
    spec: str | None = None,
    *,
    model: str | None = None,
    task: Task | str | None = None,
    sampling: SamplingParams | None = None,
    templates: Mapping[tuple[str, Task | str], TemplateSource] | None = None,
    max_reasks: int = 1,
    api_key_env: str = API_KEY_ENV,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    image_resize: str | None = None,
    local_media_root: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    **local_opts: Any,
) -> Critic:
    """Make a critic from ``spec``.

    * an ``http(s)://`` URL: an OpenAI-compatible server (vLLM, ``transformers serve``,
      a hosted API); ``model`` names the served model, else the server's only model
      is used (one ``GET /v1/models`` request is made here); ``image_resize`` and
      ``local_media_root`` choose the image transport (see
      :class:`~gcr.critic.backends.openai_http.OpenAICompatibleBackend`; None reads
      ``$GCR_CRITIC_IMAGE_RESIZE`` / ``$GCR_CRITIC_LOCAL_MEDIA``);
    * an existing folder or a Hugging Face id: the model is loaded in-process with
      transformers on ``device``/``dtype`` (``local_opts`` go to the loader);
    * None: the released RationalRewards checkpoint for ``task`` (t2i by default),
      loaded in-process.
    """
    backend = load_backend(
        spec,
        model=model,
        task=task,
        api_key_env=api_key_env,
        timeout=timeout,
        max_retries=max_retries,
        max_concurrency=max_concurrency,
        max_pixels=max_pixels,
        image_resize=image_resize,
        local_media_root=local_media_root,
        device=device,
        dtype=dtype,
        **local_opts,
    )
    return Critic(backend, sampling=sampling, templates=templates, max_reasks=max_reasks)


def load_backend(
    spec: str | None = None,
    *,
    model: str | None = None,
    task: Task | str | None = None,
    api_key_env: str = API_KEY_ENV,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    image_resize: str | None = None,
    local_media_root: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    **local_opts: Any,
) -> ChatBackend:
    """The backend :func:`load_critic` would use for ``spec`` (same rules)."""
    if spec is None or not spec.strip():
        spec = default_critic_model(task if task is not None else Task.T2I)
        logger.info("no critic given; using the released checkpoint %s in-process", spec)
    spec = spec.strip()
    if is_server_url(spec):
        from gcr.critic.backends.openai_http import OpenAICompatibleBackend

        if device is not None or dtype is not None or local_opts:
            raise ConfigError(
                "device, dtype and other local-model options apply to a critic loaded in-process, "
                f"not to the server at {spec}"
            )
        backend = OpenAICompatibleBackend(
            spec,
            model=model,
            api_key_env=api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            max_pixels=max_pixels,
            image_resize=image_resize,  # type: ignore[arg-type]  # checked by the backend
            local_media_root=local_media_root,
        )
        backend.resolve_model_sync()
        return backend
    if image_resize is not None or local_media_root is not None:
        raise ConfigError(
            "image resize and local media settings apply to a critic server (an http(s) URL); an "
            "in-process critic hands the pixels to its processor directly"
        )
    if model is not None:
        raise ConfigError(
            f"--model names a model on a critic server, but {spec!r} is not a URL; to use a local "
            "checkpoint pass its folder or Hugging Face id as the critic itself"
        )
    path = Path(spec).expanduser()
    if not path.exists() and not _HUB_ID.match(spec):
        raise ConfigError(
            f"critic {spec!r} is neither an http(s) URL, an existing folder, nor a Hugging Face model id "
            "(owner/name)"
        )
    if path.exists() and not path.is_dir():
        raise ConfigError(f"critic {spec!r} is a file; give the checkpoint folder that holds config.json")
    from gcr.critic.backends.transformers_local import load_local_backend

    return load_local_backend(
        str(path) if path.exists() else spec,
        device=device,
        dtype=dtype,
        max_pixels=max_pixels,
        **local_opts,
    )
