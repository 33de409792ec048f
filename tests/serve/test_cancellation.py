"""A cancelled MCP tool call lets the refine run finish its cleanup (the SDK cancels through anyio)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from gcr.serve.mcp_server import _cancellable


def test_cleanup_of_a_cancelled_run_completes_inside_an_anyio_cancel_scope():
    log: list[str] = []

    async def run():
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.05)  # e.g. closing the checkpoint database
            log.append("closed")

    async def call():
        with anyio.CancelScope() as scope:
            asyncio.get_running_loop().call_later(0.05, scope.cancel)
            await _cancellable(run())
        log.append("call ended")

    asyncio.run(call())
    assert log == ["closed", "call ended"]


def test_without_it_anyio_cancels_the_cleanup_too():
    """What _cancellable guards against: level cancellation hits every await in the scope."""
    log: list[str] = []

    async def run():
        try:
            await asyncio.sleep(30)
        finally:
            try:
                await asyncio.sleep(0.05)
                log.append("closed")
            except asyncio.CancelledError:
                log.append("cleanup cancelled")
                raise

    async def call():
        with anyio.CancelScope() as scope:
            asyncio.get_running_loop().call_later(0.05, scope.cancel)
            await run()

    asyncio.run(call())
    assert log == ["cleanup cancelled"]


def test_results_and_errors_pass_through():
    async def ok():
        return 42

    async def bad():
        raise ValueError("boom")

    assert asyncio.run(_cancellable(ok())) == 42
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(_cancellable(bad()))
