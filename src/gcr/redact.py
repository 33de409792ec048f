"""Keep secrets out of what gcr shows and stores.

A server URL may carry a password (``http://user:password@host/v1``). gcr uses
it to connect, in memory, but every message, log line and file shows the URL
with the password replaced by ``***``. This is the one place that does it:
:func:`redact_text` for any text, :func:`redact_data` for JSON-like data about
to be written. :class:`gcr.errors.GCRError` applies it to every error message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: What a password is replaced with.
MASK = "***"

# scheme://user:password@ — the user part stops at ':', '@' or '/', the password runs to the
# last '@' before the host (an unescaped '@' in a password still ends up masked).
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#:@]*):(?P<password>[^\s/?#]*)@",
)


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)


def redact_data(value: Any) -> Any:
    """A copy of JSON-like ``value`` (dicts, lists, strings, ...) with every string redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks URL passwords in every record it passes (libraries such as
    httpx log request URLs as they are)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
