"""Size limits on what users and models hand to gcr.

Every prompt travels through the whole loop: into the generator's text encoder,
into each critic request, into the checkpoint of every step, the trajectory and
the reports. A prompt far longer than any text encoder reads (CLIP reads 77
tokens, T5 in FLUX 512) buys nothing and costs memory at every one of those
places, so gcr refuses it where it enters, with the limit in the message.
"""

from __future__ import annotations

from gcr.errors import InputError

#: Most characters in a prompt: a user's request, a prompt-set row, an edited or refined prompt.
#: About 1000 tokens of English, twice what the longest text encoder gcr drives reads.
MAX_PROMPT_CHARS = 4000


def prompt_too_long(text: str) -> str | None:
    """Why ``text`` is too long to be a prompt, or None when it is within :data:`MAX_PROMPT_CHARS`."""
    if len(text) <= MAX_PROMPT_CHARS:
        return None
    return f"is {len(text)} characters long; gcr takes prompts of at most {MAX_PROMPT_CHARS} characters"


def check_prompt(text: str, what: str = "the prompt") -> str:
    """Return ``text``, or raise :class:`InputError` when it is longer than :data:`MAX_PROMPT_CHARS`."""
    problem = prompt_too_long(text)
    if problem is not None:
        raise InputError(f"{what} {problem}: shorten it")
    return text
