"""How long-running commands end: on SIGINT (Ctrl-C) or SIGTERM, then close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def wait_for_stop() -> None:
    """Return when the process receives SIGINT or SIGTERM (where signal handlers exist)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
