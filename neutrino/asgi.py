"""Small ASGI plumbing shared by our HTTP apps (network, compute, image)."""

from __future__ import annotations

from typing import Any


async def handled_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Answer an ASGI lifespan conversation (we have nothing to start or stop).

    Returns True when ``scope`` was a lifespan scope (the caller returns), False
    for any other scope.
    """
    if scope["type"] != "lifespan":
        return False
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return True
