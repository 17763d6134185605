"""Staff corrections of triage, exported as labelled examples for `tipline triage --eval`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.intake import records
from tipline.models import AuditEvent, Tip
from tipline.vault.keyring import Vault

RECLASSIFIED = "tip.reclassified"


def corrected_examples(session: Session, vault: Vault) -> Iterator[dict[str, Any]]:
    """One example per reclassified tip: its text, the staff label, and triage's first verdict.

    The label is the tip's current severity and category (the latest correction); the
    automatic verdict is the `from_*` side of the first correction. Shredded tips are skipped.
    """
    first: dict[str, dict[str, Any]] = {}
    for event in session.scalars(
        select(AuditEvent).where(AuditEvent.action == RECLASSIFIED).order_by(AuditEvent.id)
    ):
        if event.tip_id is not None:
            first.setdefault(event.tip_id, event.detail)
    for tip_id, detail in first.items():
        tip = session.get(Tip, tip_id)
        if tip is None or tip.data_key is None:
            continue
        yield {
            "id": f"{tip.school.slug}-{tip.code}",
            "text": records.tip_text(vault, tip),
            "severity": tip.severity,
            "category": tip.category,
            "triage_severity": detail.get("from_severity"),
            "triage_category": detail.get("from_category"),
        }
