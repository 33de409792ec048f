"""PARROT: make a reasoning critic from plain preference pairs (docs/training.md).

Preference data in one normalized format (:mod:`.data`, importers in
:mod:`.importers`), then the phases: anchored generation (:mod:`.anchor`),
consistency filtering (:mod:`.filter`), pointwise projection (:mod:`.project`)
and the SFT dataset (:mod:`.dataset`); :class:`ParrotPipeline` runs them in one
work folder. Distillation (SFT) lives in :mod:`gcr.training.sft`.
"""

from gcr.training.parrot.data import (
    PreferenceItem,
    PreferenceSet,
    ValidationReport,
    load_preferences,
    validate_preferences,
    write_preferences,
)
from gcr.training.parrot.importers import LAYOUTS, ImportReport, import_preferences
from gcr.training.parrot.pipeline import ParrotPipeline, ParrotSettings
from gcr.training.parrot.workspace import ParrotWorkspace

__all__ = [
    "LAYOUTS",
    "ImportReport",
    "ParrotPipeline",
    "ParrotSettings",
    "ParrotWorkspace",
    "PreferenceItem",
    "PreferenceSet",
    "ValidationReport",
    "import_preferences",
    "load_preferences",
    "validate_preferences",
    "write_preferences",
]
