"""The images this process already holds, by run-folder path, so no node decodes them again.

``generate`` encodes each new candidate once (a fast, lossless PNG), writes those
bytes to the run folder and keeps pixels, bytes and path here; ``critique`` then
hands the critic that :class:`~gcr.image_input.ImageInput`, which sends the bytes
already written (or the file's ``file://`` URL, or the in-memory pixels to an
in-process model) instead of decoding the PNG and encoding it again. Source
images are kept the same way for the generator and the critic.

Only a bounded number of recent images is kept (a candidate is critiqued right
after it is generated). A miss, e.g. after a resume in a new process, falls back
to the file, whose header is read now and whose pixels are decoded only if a
destination needs them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from gcr.image_input import ImageInput

#: Enough for a round of candidates plus the sources; a 1024 px image costs about 5 MB here.
DEFAULT_KEEP = 16


class ImageStore:
    """A thread-safe, bounded map from resolved file paths to :class:`ImageInput`."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 0:
            raise ValueError(f"keep must be 0 or more, got {keep}")
        self.keep = keep
        self._items: OrderedDict[Path, ImageInput] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, path: str | Path, image: ImageInput) -> None:
        """Remember ``image`` as the content of the complete file ``path``."""
        key = Path(path).resolve()
        with self._lock:
            self._items[key] = image
            self._items.move_to_end(key)
            while len(self._items) > self.keep:
                self._items.popitem(last=False)

    def get(self, path: str | Path) -> ImageInput | None:
        key = Path(path).resolve()
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def open(self, path: str | Path) -> ImageInput:
        """The kept image for ``path``, else the file itself (header checked, pixels not yet decoded)."""
        found = self.get(path)
        if found is not None:
            return found
        image = ImageInput.from_file(path)
        self.put(path, image)
        return image

    def __len__(self) -> int:
        return len(self._items)
