"""The refine graph's nodes. Each module builds one node from :class:`NodeDeps` (a closure)."""

from gcr.agent.nodes.base import NodeDeps

__all__ = ["NodeDeps"]
