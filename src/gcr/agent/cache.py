"""A content-keyed cache of generated images and critiques on disk.

Keys are SHA-256 digests of everything that determines the result:

* a generation: generator model id, generation parameters, prompt, seed and
  the pixel digests of the source images;
* a critique: the critic's identity (model plus prompt-template digest), the
  task, the prompt judged, the image's pixel digest and the source digests.

A repeated run, or a resumed one, finds its earlier work here instead of
generating or critiquing again. Entries are written atomically (temporary
file, then rename), so a killed process never leaves a half-written entry
that looks complete. Failures are never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.critic.schema import Critique
from gcr.images import load_image
from gcr.io import atomic_file, copy_file_atomic, write_text_atomic

logger = logging.getLogger(__name__)

_NAMESPACE = "gcr-artifacts-v1"


def _digest(payload: Mapping[str, Any]) -> str:
    text = json.dumps({"ns": _NAMESPACE, **payload}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generation_key(
    *,
    model_id: str,
    params: Mapping[str, Any],
    prompt: str,
    seed: int,
    source_digests: Sequence[str] = (),
) -> str:
    """Key of one generated image."""
    return _digest(
        {
            "kind": "generation",
            "model": model_id,
            "params": dict(params),
            "prompt": prompt,
            "seed": int(seed),
            "sources": list(source_digests),
        }
    )


def critique_key(
    *,
    critic_identity: str,
    task: str,
    prompt: str,
    image_digest: str,
    source_digests: Sequence[str] = (),
) -> str:
    """Key of one critique of one image."""
    return _digest(
        {
            "kind": "critique",
            "critic": critic_identity,
            "task": str(task),
            "prompt": prompt,
            "image": image_digest,
            "sources": list(source_digests),
        }
    )


def default_cache_dir() -> Path:
    """``$GCR_CACHE_DIR``, else ``$XDG_CACHE_HOME/gcr/artifacts``, else ``~/.cache/gcr/artifacts``."""
    if env := os.environ.get("GCR_CACHE_DIR"):
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "gcr" / "artifacts"


class ArtifactCache:
    """Images and critiques under ``root``, sharded by the first two hex digits of the key."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"ArtifactCache({str(self.root)!r})"

    # ------------------------------------------------------------------ images

    def image_path(self, key: str) -> Path:
        return self._path("generations", key, ".png")

    def get_image(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """The cached image file and its metadata, or ``None`` on a miss.

        An entry that cannot be read is logged, removed and treated as a miss,
        so the image is simply generated again.
        """
        png, meta_path = self.image_path(key), self._path("generations", key, ".json")
        if not (png.exists() and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            load_image(png)
        except Exception as exc:  # a damaged entry must not stop the run
            logger.warning("discarding unreadable cache entry %s: %s", png, exc)
            for p in (png, meta_path):
                p.unlink(missing_ok=True)
            return None
        return png, meta

    def put_image(self, key: str, image: Image.Image, meta: Mapping[str, Any]) -> Path:
        """Store ``image`` (as PNG) and its metadata; returns the cached file's path."""
        png = self.image_path(key)
        with atomic_file(png) as fh:
            image.save(fh, format="PNG", compress_level=1)
        return self._commit_meta(key, png, meta)

    def put_image_file(self, key: str, png_file: str | Path, meta: Mapping[str, Any]) -> Path:
        """Store a copy of an already written PNG file (no second encoding) and its metadata."""
        png = copy_file_atomic(png_file, self.image_path(key))
        return self._commit_meta(key, png, meta)

    def _commit_meta(self, key: str, png: Path, meta: Mapping[str, Any]) -> Path:
        write_text_atomic(self._path("generations", key, ".json"), json.dumps(dict(meta), default=str))
        return png

    # ------------------------------------------------------------------ critiques

    def get_critique(self, key: str) -> Critique | None:
        path = self._path("critiques", key, ".json")
        if not path.exists():
            return None
        try:
            return Critique.from_json(path.read_text("utf-8"))
        except Exception as exc:
            logger.warning("discarding unreadable cached critique %s: %s", path, exc)
            path.unlink(missing_ok=True)
            return None

    def put_critique(self, key: str, critique: Critique) -> None:
        write_text_atomic(self._path("critiques", key, ".json"), critique.to_json())

    # ------------------------------------------------------------------ helpers

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"
