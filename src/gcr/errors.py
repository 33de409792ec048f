"""The gcr error hierarchy.

Every error that a user can fix derives from :class:`GCRError`; its message says
what went wrong and what to do about it. The CLI prints such errors as one short
line with exit code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from gcr.redact import redact_text


class GCRError(Exception):
    """Base class of every error gcr raises on purpose.

    Its message never shows a URL's password (see :mod:`gcr.redact`): errors are printed,
    recorded in results files and saved in checkpoints.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))


class InputError(GCRError, ValueError):
    """The caller passed something unusable (empty prompt, bad size, unknown task)."""


class ImageError(InputError):
    """An image file is missing, unreadable or not an image."""


class ConfigError(GCRError):
    """A configuration value or file is invalid."""


class DependencyError(GCRError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'gcr[{extra}]'"
        )


class CriticError(GCRError):
    """The critic could not produce a critique."""


class CriticUnavailableError(CriticError):
    """The critic server could not be reached or kept failing after retries."""


class CriticResponseError(CriticError):
    """The critic server answered, but with something that is not a usable reply."""


class CriticLoadError(CriticError):
    """A local critic model could not be loaded (missing folder, not a vision-language model, ...)."""


class CriticServeError(CriticError):
    """A critic server could not be started (server software missing, or it exited early)."""


class CritiqueParseError(CriticError):
    """The critic's text does not contain a readable critique.

    ``raw_text`` keeps the model's full answer so that nothing is lost.
    """

    def __init__(self, message: str, raw_text: str) -> None:
        self.raw_text = raw_text
        preview = raw_text.strip().replace("\n", " ")
        if len(preview) > 160:
            preview = preview[:157] + "..."
        super().__init__(f"{message} (answer began: {preview!r})" if preview else message)


class RewardError(CriticError):
    """A critique holds no score for any dimension the reward is made of (all N/A or missing)."""


class JudgeError(GCRError):
    """An independent judge could not score an image (recorded as a failure, never as a score)."""


class JudgeUnavailableError(JudgeError):
    """A judge's server could not be reached, or its model could not be loaded."""


class JudgeResponseError(JudgeError):
    """A judge answered, but its answer holds no readable score.

    ``raw_text`` keeps the judge's full answer so that nothing is lost.
    """

    def __init__(self, message: str, raw_text: str = "") -> None:
        self.raw_text = raw_text
        preview = raw_text.strip().replace("\n", " ")
        if len(preview) > 160:
            preview = preview[:157] + "..."
        super().__init__(f"{message} (answer began: {preview!r})" if preview else message)


class GeneratorError(GCRError):
    """The image generator failed."""


class GeneratorLoadError(GeneratorError):
    """A generator model could not be loaded."""


class GeneratorOOMError(GeneratorError):
    """The accelerator ran out of memory while generating."""


class MachineError(GCRError):
    """This machine cannot run what was asked (no GPU, too little memory, no hub access, no disk)."""


class RunError(GCRError):
    """A run folder is missing, corrupt or does not match the requested resume."""


class DatasetError(GCRError):
    """A dataset or prompt file is malformed; the message names the row and field."""


class RefinerError(GCRError):
    """The prompt rewriter (an LLM refiner) could not be reached or gave no usable answer."""
