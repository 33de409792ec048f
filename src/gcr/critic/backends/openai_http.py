"""Critic backend for any OpenAI-compatible chat server (vLLM, ``transformers serve``, hosted APIs).

Requests go through :class:`openai.AsyncOpenAI`, which already retries transient
failures (connection errors, timeouts, 408/409/429 and 5xx) with exponential
backoff and enforces the timeout; this module adds a concurrency limit, image
transport, model discovery, and the translation of every failure into a
:class:`~gcr.errors.CriticError` whose message says what to do.

Image transport (see :mod:`gcr.image_input`): with ``image_resize="client"`` (the
default, right for every server) an image over the pixel budget is downscaled
here and sent as a PNG; one within it goes as it is. With ``"server"`` every image
goes as it is and the server applies the budget (``gcr serve critic`` gives vLLM
the budget through ``--mm-processor-kwargs``). Either way an image that already
has acceptable encoded bytes (a PNG the generator wrote, a dataset's JPEG) is sent
as those bytes, and with ``local_media_root`` an image file under that folder is
sent as a ``file://`` URL, for a server started with vLLM's
``--allowed-local-media-path`` on the same folder.

The API key is read from an environment variable and kept out of logs and reprs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import openai
from openai.types.chat import ChatCompletion
from PIL import Image

from gcr.critic.backends.base import ChatRequest, Completion, SamplingParams
from gcr.critic.defaults import (
    API_KEY_ENV,
    DEFAULT_IMAGE_RESIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    IMAGE_RESIZE_ENV,
    IMAGE_RESIZE_MODES,
    LOCAL_MEDIA_ENV,
)
from gcr.errors import ConfigError, CriticError, CriticResponseError, CriticUnavailableError
from gcr.image_input import ImageInput, as_image_input
from gcr.redact import MASK, redact_text

logger = logging.getLogger(__name__)

#: Key sent to local servers that need none (vLLM and ``transformers serve`` accept anything).
_NO_KEY = "EMPTY"
#: The variable of the user's OpenAI key, and the one host it is sent to unless named explicitly.
OPENAI_KEY_ENV = "OPENAI_API_KEY"
OPENAI_API_HOST = "api.openai.com"


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` → ``http://host:8000/v1``; URLs that already carry a path are kept."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"critic URL {url!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
    if parts.password == MASK:
        raise ConfigError(
            f"the password of critic URL {url!r} was left out when it was saved (gcr never writes "
            "passwords): give the full URL again with --critic"
        )
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _resolve_api_key(env_name: str, base_url: str) -> str:
    """The key from ``env_name``; ``OPENAI_API_KEY`` only goes to OpenAI's own API (or when named)."""
    key = os.environ.get(env_name)
    if key:
        return key
    if is_openai_api(base_url):
        return os.environ.get(OPENAI_KEY_ENV) or _NO_KEY
    return _NO_KEY


def is_openai_api(url: str) -> bool:
    """Whether ``url`` is OpenAI's own API (https://api.openai.com), the only host that gets
    ``OPENAI_API_KEY`` without being told: another server, maybe plain http on another host,
    must not receive the user's OpenAI key."""
    parts = urlsplit(url)
    return parts.scheme == "https" and (parts.hostname or "").lower() == OPENAI_API_HOST


ImageResize = Literal["client", "server"]


def resolve_image_resize(value: str | None) -> ImageResize:
    """``value``, else ``$GCR_CRITIC_IMAGE_RESIZE``, else the default (``client``); checked."""
    chosen = value if value is not None else (os.environ.get(IMAGE_RESIZE_ENV) or DEFAULT_IMAGE_RESIZE)
    chosen = chosen.strip().lower()
    if chosen not in IMAGE_RESIZE_MODES:
        raise ConfigError(
            f"image resize {chosen!r} is not one of {', '.join(IMAGE_RESIZE_MODES)} (from "
            f"{'the argument' if value is not None else '$' + IMAGE_RESIZE_ENV}): use 'server' only for a "
            "server that applies the pixel budget itself (gcr serve critic), else 'client'"
        )
    return chosen  # type: ignore[return-value]


def resolve_local_media_root(value: str | Path | None) -> Path | None:
    """``value``, else ``$GCR_CRITIC_LOCAL_MEDIA``, as an absolute folder; None when neither is set."""
    raw = value if value is not None else (os.environ.get(LOCAL_MEDIA_ENV) or None)
    if raw is None or not str(raw).strip():
        return None
    root = Path(raw).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(
            f"local media folder {root} is not a folder on this machine; give the folder the critic "
            "server was started with (--allowed-local-media-path)"
        )
    return root


def image_url(
    image: Image.Image | ImageInput,
    max_pixels: int | None,
    resize: ImageResize = "client",
    local_media_root: Path | None = None,
) -> str:
    """The ``image_url`` to send for ``image`` under the transport settings (see the module doc)."""
    inp = as_image_input(image)
    if resize == "client":
        inp = inp.within_budget(max_pixels)
    if local_media_root is not None:
        url = inp.file_url(local_media_root)
        if url is not None:
            return url
    return inp.data_url()


def build_messages(
    request: ChatRequest,
    max_pixels: int | None,
    resize: ImageResize = "client",
    local_media_root: Path | None = None,
) -> list[dict[str, Any]]:
    """OpenAI chat messages: the system text, then one user message of text and image parts."""
    content: list[dict[str, Any]] = []
    for part in request.parts:
        if isinstance(part, Image.Image | ImageInput):
            url = image_url(part, max_pixels, resize, local_media_root)
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif part:
            content.append({"type": "text", "text": str(part)})
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.append({"role": "user", "content": content})
    return messages


class OpenAICompatibleBackend:
    """A :class:`~gcr.critic.backends.base.ChatBackend` talking to an OpenAI-compatible server.

    Args:
        base_url: server URL; ``/v1`` is appended when the URL has no path.
        model: served model name; when None it is discovered from ``GET /v1/models``
            (which must list exactly one model).
        api_key_env: environment variable with the API key. ``OPENAI_API_KEY`` is the
            fallback for OpenAI's own API only (https://api.openai.com); any other server gets
            it only when named here. Servers that need no key get a dummy one.
        timeout: seconds one HTTP attempt may take.
        max_retries: retries of transient failures, with the client's exponential backoff.
        max_concurrency: requests in flight at once from this backend.
        max_pixels: the image pixel budget; None sends images as they are.
        image_resize: ``"client"`` downscales images over ``max_pixels`` here; ``"server"``
            sends them as they are for a server that applies the budget itself (a vLLM
            started by ``gcr serve critic``). None reads ``$GCR_CRITIC_IMAGE_RESIZE``,
            default ``"client"``.
        local_media_root: send image files under this folder as ``file://`` URLs (the
            server must run on this machine with ``--allowed-local-media-path`` set to
            it). None reads ``$GCR_CRITIC_LOCAL_MEDIA``; unset sends bytes.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key_env: str = API_KEY_ENV,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        image_resize: ImageResize | None = None,
        local_media_root: str | Path | None = None,
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"critic timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"critic max_retries must be 0 or more, got {max_retries}")
        if max_concurrency < 1:
            raise ConfigError(f"critic max_concurrency must be at least 1, got {max_concurrency}")
        self.base_url = normalize_base_url(base_url)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_concurrency = int(max_concurrency)
        self.max_pixels = max_pixels
        self.image_resize: ImageResize = resolve_image_resize(image_resize)
        self.local_media_root = resolve_local_media_root(local_media_root)
        self.api_key_env = api_key_env
        self._model = model
        # One client and semaphore per event loop: httpx connections and asyncio
        # primitives must not cross loops (sync helpers run their own loop).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend(base_url={redact_text(self.base_url)!r}, model={self._model!r})"

    # -- model name --------------------------------------------------------------
    @property
    def model_id(self) -> str:
        if self._model is None:
            raise CriticError(
                f"the critic model at {self.base_url} is not known yet: pass model=... "
                "or call resolve_model() / resolve_model_sync() first"
            )
        return self._model

    async def resolve_model(self) -> str:
        """The served model name, discovered from ``GET /v1/models`` when not given."""
        if self._model is None:
            try:
                page = await self._get_client().models.list()
            except openai.OpenAIError as exc:
                raise self._map_error(exc, "listing the served models") from None
            self._model = self._pick_model([m.id for m in page.data])
        return self._model

    def resolve_model_sync(self) -> str:
        """Like :meth:`resolve_model`, for callers without an event loop (one blocking request)."""
        if self._model is None:
            client = openai.OpenAI(
                base_url=self.base_url,
                api_key=_resolve_api_key(self.api_key_env, self.base_url),
                timeout=min(self.timeout, 30.0),
                max_retries=self.max_retries,
            )
            try:
                ids = [m.id for m in client.models.list().data]
            except openai.OpenAIError as exc:
                raise self._map_error(exc, "listing the served models") from None
            finally:
                client.close()
            self._model = self._pick_model(ids)
        return self._model

    def _pick_model(self, ids: list[str]) -> str:
        if len(ids) == 1:
            logger.info("critic server %s serves model %r", redact_text(self.base_url), ids[0])
            return ids[0]
        if not ids:
            raise CriticResponseError(f"the critic server at {self.base_url} lists no models")
        raise ConfigError(
            f"the critic server at {self.base_url} serves several models ({', '.join(ids)}): "
            "choose one with --model NAME"
        )

    # -- requests ----------------------------------------------------------------
    def _get_client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._loop = loop
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=_resolve_api_key(self.api_key_env, self.base_url),
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._client

    async def complete(self, request: ChatRequest, sampling: SamplingParams) -> Completion:
        """Send one chat request and return the answer (``truncated`` when cut at ``max_tokens``)."""
        model = await self.resolve_model()
        client = self._get_client()
        assert self._semaphore is not None
        kwargs: dict[str, Any] = {
            "model": model,
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.top_p is not None:
            kwargs["top_p"] = sampling.top_p
        if sampling.extra:
            kwargs["extra_body"] = dict(sampling.extra)
        async with self._semaphore:
            # Downscaling or encoding an image (when it has to happen at all) takes tens of ms:
            # do it in a worker thread (PIL releases the GIL) and only for requests about to be
            # sent, so the loop stays responsive and at most max_concurrency payloads sit in memory.
            kwargs["messages"] = await asyncio.to_thread(
                build_messages, request, self.max_pixels, self.image_resize, self.local_media_root
            )
            try:
                response = await client.chat.completions.create(**kwargs)
            except openai.OpenAIError as exc:
                raise await self._amap_error(exc) from None
            except ValueError as exc:  # the body was not JSON
                raise CriticResponseError(
                    f"the critic server at {self.base_url} answered with a body that is not valid JSON "
                    f"({exc}); is the URL an OpenAI-compatible endpoint?"
                ) from None
        return self._read_answer(response)

    def _read_answer(self, response: object) -> Completion:
        if not isinstance(response, ChatCompletion):
            raise CriticResponseError(
                f"the critic server at {self.base_url} did not answer with a chat completion "
                f"(got {type(response).__name__}); is the URL an OpenAI-compatible endpoint?"
            )
        if not response.choices:
            raise CriticResponseError(f"the critic server at {self.base_url} answered with no choices")
        choice = response.choices[0]
        text = choice.message.content if choice.message is not None else None
        if not text or not text.strip():
            raise CriticResponseError(
                f"the critic model {response.model or self._model!r} returned an empty answer "
                f"(finish_reason={choice.finish_reason!r})"
            )
        if choice.finish_reason == "length":
            logger.warning("critic answer was cut off at the token limit; raise max_tokens to get it whole")
        return Completion(text, finish_reason=choice.finish_reason)

    # -- error translation -------------------------------------------------------
    async def _amap_error(self, exc: openai.OpenAIError) -> CriticError:
        served: list[str] | None = None
        if isinstance(exc, openai.NotFoundError):
            served = await self._served_models_or_none()
        return self._map_error(exc, "the chat request", served)

    async def _served_models_or_none(self) -> list[str] | None:
        try:
            page = await self._get_client().with_options(max_retries=0).models.list()
        except openai.OpenAIError:
            return None
        return [m.id for m in page.data]

    def _map_error(
        self, exc: openai.OpenAIError, action: str, served: list[str] | None = None
    ) -> CriticError:
        url = self.base_url
        retries = f"after {self.max_retries} retries" if self.max_retries else "with retries disabled"
        if isinstance(exc, openai.APITimeoutError):
            return CriticUnavailableError(
                f"the critic server at {url} did not answer {action} within the {self.timeout:g}s timeout "
                f"({retries}); raise --timeout or check the server's load"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            why = f"{type(cause).__name__}: {cause}" if cause is not None and str(cause) else "no answer"
            return CriticUnavailableError(
                f"cannot connect to the critic server at {url} ({why}; {retries}): is the server running "
                f"at {url}? Start one with `gcr serve critic`"
            )
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc, action, served, retries)
        return CriticResponseError(f"the critic server at {url} failed during {action}: {exc}")

    def _map_status(
        self, exc: openai.APIStatusError, action: str, served: list[str] | None, retries: str
    ) -> CriticError:
        url, code = self.base_url, exc.status_code
        detail = _error_detail(exc)
        if code >= 500 or code in (408, 409, 429):
            return CriticUnavailableError(
                f"the critic server at {url} kept failing with HTTP {code} {retries} "
                f"during {action}: {detail}"
            )
        if code in (401, 403):
            return CriticResponseError(
                f"the critic server at {url} refused the API key (HTTP {code}): set the "
                f"{self.api_key_env} environment variable to a valid key"
            )
        if code == 404:
            if served:
                return CriticResponseError(
                    f"model {self._model!r} is not served at {url} (HTTP 404); served models: "
                    f"{', '.join(served)}. Pass --model with one of them"
                )
            return CriticResponseError(
                f"the critic server at {url} answered HTTP 404 ({detail}); check the URL "
                "(OpenAI-compatible servers usually live under /v1) and the model name"
            )
        hint = ""
        lowered = detail.lower()
        if code == 400 and any(word in lowered for word in ("image", "multimodal", "mm_", "at most")):
            hint = (
                "; the server may accept fewer images per request than gcr sends: start vLLM with "
                "`--limit-mm-per-prompt '{\"image\": 16}'` (gcr serve critic does this)"
            )
        elif code == 400 and any(word in lowered for word in ("context", "too long", "max_tokens", "length")):
            hint = "; lower --max-tokens or the image pixel budget, or serve with a longer --max-model-len"
        return CriticResponseError(
            f"the critic server at {url} rejected the request (HTTP {code}): {detail}{hint}"
        )

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client, self._loop, self._semaphore = None, None, None
        # A client made on another (possibly closed) loop cannot be closed from here;
        # its connections go with that loop.
        if client is not None and loop is asyncio.get_running_loop():
            await client.close()


def _error_detail(exc: openai.APIStatusError) -> str:
    """The server's own error message when it sent one (vLLM and OpenAI nest it under ``error``)."""
    body = exc.body
    if isinstance(body, dict):
        nested = body.get("error")
        message = nested.get("message") if isinstance(nested, dict) else None
        message = message or body.get("message") or (nested if isinstance(nested, str) else None)
        if message:
            return str(message)
    return exc.message
