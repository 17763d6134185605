"""The live queue: what an open queue page polls for, and a tag that changes only with it.

The tag (the poll's ETag) is a hash of the rows the login's own queue queries return
(`access.queue`), nothing else: a tip at another school, or one its role sees only when paged,
changes neither those rows nor the tag, so the tag says nothing about tips the login may not view.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tipline.models import User
from tipline.staff import access
from tipline.vault.keyring import Vault

# Part of every tag: bump it when the fragment's markup changes, so open queues fetch it again.
VERSION = "2"
# The alarm: critical tips nobody has moved on from "new", whatever the page's filters show.
ALARM = access.QueueFilter(status="new", severity="critical")


@dataclass(frozen=True)
class LiveQueue:
    page: access.QueuePage
    critical: list[access.QueueRow]  # new critical tips the login may view, newest first
    more_critical: bool  # more of them than one page holds
    etag: str

    @property
    def critical_count(self) -> str:
        """For the page title and the banner: "2", or "50+"."""
        return f"{len(self.critical)}{'+' if self.more_critical else ''}"


def live_queue(session: Session, vault: Vault, user: User, flt: access.QueueFilter) -> LiveQueue:
    """The queue page's rows under `flt` and the login's new critical tips, with their tag."""
    page = access.queue(session, vault, user, flt)
    alarm = access.queue(session, vault, user, ALARM, excerpts=False)
    return LiveQueue(page, alarm.rows, alarm.has_next, etag=tag(flt, page, alarm))


def tag(flt: access.QueueFilter, *pages: access.QueuePage) -> str:
    """A strong validator over exactly what the login is shown (ages aside: the page's script
    updates those itself)."""
    digest = hashlib.sha256(VERSION.encode())
    digest.update(json.dumps([flt.status, flt.severity, flt.school, flt.page]).encode())
    digest.update(json.dumps(query_args(flt), sort_keys=True).encode())
    for page in pages:
        rows = [
            [
                row.id,
                row.code,
                row.school,
                row.severity,
                row.category,
                row.status,
                row.created_at.isoformat(),
                row.message_count,
                row.excerpt,
                row.incident_id,
            ]
            for row in page.rows
        ]
        found = page.search
        searched = [found.decrypted, found.capped, found.matched] if found else None
        digest.update(json.dumps([page.page, page.has_next, rows, searched]).encode())
    return digest.hexdigest()[:32]


def query_args(flt: access.QueueFilter) -> dict[str, str | int]:
    """The filter as query arguments, defaults left out (for the refresh link and the poll)."""
    args: dict[str, str | int] = {}
    if flt.status != "active":
        args["status"] = flt.status
    if flt.severity:
        args["severity"] = flt.severity
    if flt.school:
        args["school"] = flt.school
    if flt.category:
        args["category"] = flt.category
    if flt.mine:
        args["mine"] = "1"
    if flt.since:
        args["from"] = flt.since.isoformat()
    if flt.until:
        args["to"] = flt.until.isoformat()
    if flt.incident:
        args["incident"] = flt.incident
    if flt.q:
        args["q"] = flt.q
    if flt.page != 1:
        args["page"] = flt.page
    return args
