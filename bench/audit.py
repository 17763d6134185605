"""`tipline audit verify` over 100,000 audit entries in PostgreSQL (and SQLite with --sqlite).

Writes the entries in bulk, chains them with the sweeper's own `seal_pending`, then times the
command as an operator runs it (a `tipline` process) and reports its peak memory.

Prints figures; not a test. Run: python bench/audit.py [--entries 100000] [--sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _stack import tipline_env
from flask_migrate import upgrade

from tipline.cli.assemble import build_app
from tipline.db import utcnow
from tipline.extensions import db
from tipline.models import AuditEvent
from tipline.vault import audit


@contextlib.contextmanager
def sqlite_env() -> Iterator[dict[str, str]]:
    with tipline_env("http://127.0.0.1:5000") as env, tempfile.TemporaryDirectory() as tmp:
        yield {**env, "TIPLINE_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}"}


def fill(env: dict[str, str], entries: int) -> None:
    app = build_app(env)
    with app.app_context():
        upgrade()
        session = db.session
        now = utcnow()
        for start in range(0, entries, 5000):
            session.add_all(
                AuditEvent(
                    actor=f"user:{i % 40}",
                    action="tip.viewed",
                    tip_id=None,
                    detail={"n": i, "page": "2"},
                    at=now,
                )
                for i in range(start, min(entries, start + 5000))
            )
            session.commit()
        while audit.seal_pending(session, limit=5000):
            session.commit()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    with sqlite_env() if args.sqlite else tipline_env("http://127.0.0.1:5000") as env:
        fill(env, args.entries)
        began = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "tipline", "audit", "verify"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(proc.stdout.strip() or proc.stderr.strip())
        kind = "SQLite" if args.sqlite else "PostgreSQL"
        print(f"{kind}: {args.entries} entries verified in {took:.2f} s, peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
