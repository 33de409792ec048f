"""gcr: Generate-Critique-Refine agent and toolkit built on reasoning reward models."""

from gcr.errors import GCRError

__all__ = ["GCRError", "__version__"]
__version__ = "0.1.0"
