"""Web intake: a tip with an optional attachment, its receipt, and follow-ups by receipt.

Plain functions over a session, a vault and the triage rules; the caller commits, and only
after the commit hands it to the worker for routing (`queueing.hand_off_route`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.db import new_id
from tipline.intake import receipts, records
from tipline.intake.filetypes import MAX_ATTACHMENT, refusal, sniff
from tipline.intake.records import IntakeError
from tipline.models import CHECKING, Attachment, Message, School, Tip, Tipster
from tipline.platform.ratelimit import FailureLimiter, Limits
from tipline.platform.services import Services
from tipline.triage import RuleSet, classify
from tipline.triage.verdict import LEVELS
from tipline.vault import audit, passwords
from tipline.vault.keyring import Vault

__all__ = [
    "MAX_ATTACHMENT",  # the upload limit and the sniffing live in `filetypes`; views read them here
    "AttachmentRejected",
    "EmptyTip",
    "sniff",
    "submit_web_tip",
]


class EmptyTip(IntakeError):
    """The text is empty once whitespace is removed."""


class AttachmentRejected(IntakeError):
    """The file is not an accepted image or PDF, or is too large; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"attachment rejected: {reason}")
        self.reason = reason  # "type" | "size" (also: more pixels than imageclean allows)


@dataclass(frozen=True)
class WebReceipt:
    """What the student is shown once: the tip's receipt code and passphrase."""

    tip: Tip
    code: str  # formatted in groups, as shown
    passphrase: str
    attachment_id: str | None = None  # being checked: enqueue it after the commit


@dataclass(frozen=True)
class SpooledReceipt:
    """A web tip taken while the database was down: its receipt was shown then."""

    code: str  # the receipt code, normal form
    passphrase_hash: str
    tip_code: str  # the `T` code its offline page (if any) carried


@dataclass(frozen=True)
class FollowupResult:
    message: Message
    escalated: bool  # the new text raised the tip's severity: route it again after commit


def check_attachment(data: bytes) -> str:
    """The sniffed content type of an acceptable attachment; raises AttachmentRejected.

    Only what the first bytes and the length say: decoding is the sandbox's, in the worker
    (`tipline.intake.sandbox`), never in the request.
    """
    reason = refusal(data)
    content_type = sniff(data)
    if reason is not None or content_type is None:
        raise AttachmentRejected(reason or "type")
    return content_type


def submit_web_tip(
    session: Session,
    vault: Vault,
    rules: RuleSet,
    *,
    school: School,
    text: str,
    attachment: bytes | None,
    lang: str,
    now: datetime,
    fresh_session: bool = False,
    spooled: SpooledReceipt | None = None,
) -> WebReceipt:
    """Store a sealed web tip, its attachment and a new receipt; the caller commits.

    `fresh_session`: the browser session sent no tip before (flood mode counts these).
    `spooled`: the receipt was made while the database was down (`tipline.intake.outage`);
    it is kept, and the returned passphrase is empty (only its hash was kept).
    """
    clean = records.clean_text(text)
    if not clean.strip():
        raise EmptyTip("the tip is empty")
    # Before anything is written, and cheap: the length and the first bytes. The file is
    # decoded (and its EXIF GPS, phone model and time dropped) by the sandbox in the worker.
    content_type = check_attachment(attachment) if attachment is not None else None
    code = spooled.code if spooled is not None else receipts.new_code()
    passphrase = "" if spooled is not None else receipts.new_passphrase()
    # The code and the passphrase are kept only as keyed hashes: a stolen database cannot be
    # searched for either without the lookup key, and 77 random bits need no slow hash on top
    # (an argon2 hash per post would let a flood of posts tie up the web workers).
    receipt_hash = vault.lookup_hash(session, "receipt", code)
    passphrase_hash = (
        spooled.passphrase_hash
        if spooled is not None
        else keyed_passphrase(session, vault, receipt_hash, passphrase)
    )
    tipster = Tipster(
        id=new_id(),
        kind="web",
        receipt_hash=receipt_hash,
        passphrase_hash=passphrase_hash,
        language=lang,
        created_at=now,
    )
    session.add(tipster)
    verdict = classify(clean, rules=rules)
    tip = records.create_tip(
        session,
        vault,
        school=school,
        text=clean,
        source="web",
        verdict=verdict,
        tipster=tipster,
        now=now,
        code=spooled.tip_code if spooled is not None else None,
    )
    tip.fresh_session = fresh_session
    att = None
    if attachment is not None and content_type is not None:
        att = store_upload(session, vault, tip, attachment, content_type, now=now)
    return WebReceipt(
        tip=tip,
        code=receipts.format_code(code),
        passphrase=passphrase,
        attachment_id=att.id if att is not None else None,
    )


def store_upload(
    session: Session,
    vault: Vault,
    tip: Tip,
    data: bytes,
    content_type: str,
    *,
    now: datetime,
) -> Attachment:
    """Seal an upload as it came, "checking", under a data key of its own; the caller commits.

    Staff cannot download it until the sandbox has cleaned it (`media.check_upload`), which
    seals the clean file under a new key and shreds this one: the raw bytes, with whatever
    metadata they carry, are then unreadable even in old database pages.
    """
    att = Attachment(
        id=new_id(),
        tip_id=tip.id,
        content_type=content_type,
        size=len(data),
        status=CHECKING,
        data_key=vault.new_data_key(),
        created_at=now,
    )
    vault.put(att, "content", data)
    session.add(att)
    audit.record(
        session, "student", "attachment.received", tip.id, attachment_id=att.id, size=len(data)
    )
    return att


def open_followup(session: Session, vault: Vault, code: str, passphrase: str) -> Tip | None:
    """The tip a receipt opens, or None; every failure looks and takes the same."""
    normal = receipts.normalize_code(code)
    tipster = None
    if normal is not None:
        tipster = session.scalars(
            select(Tipster).where(
                Tipster.receipt_hash == vault.lookup_hash(session, "receipt", normal)
            )
        ).first()
    if tipster is None or tipster.passphrase_hash is None:
        # The same work as a real check: a faster "no such code" would be an oracle.
        keyed_passphrase(session, vault, "0" * 64, passphrase)
        return None
    if not _passphrase_matches(session, vault, tipster, passphrase) or tipster.blocked:
        return None
    return session.scalars(
        select(Tip).where(Tip.tipster_id == tipster.id).order_by(Tip.created_at.desc())
    ).first()


def tip_for_followup(session: Session, tip_id: str) -> Tip | None:
    """The tip a follow-up page's token names, unless it is gone or its sender is blocked.

    The token outlives the check of the receipt: blocking must also stop a page already open.
    """
    tip = session.get(Tip, tip_id)
    if tip is None or (tip.tipster is not None and tip.tipster.blocked):
        return None
    return tip


def open_followup_limited(
    session: Session, svc: Services, code: str, passphrase: str, limits: Limits
) -> Tip | None:
    """`open_followup` behind the failure limiter: RateLimited once a receipt code has failed
    too often (then even the right passphrase is refused), LimiterUnavailable without Redis
    (guessing would be unlimited, so the caller refuses for now).

    Limited by receipt code only: a count across all codes would let anyone close follow-ups
    for every student with a burst of junk posts, and spreading guesses over codes gains
    nothing against a 77-bit passphrase behind an 80-bit code.
    """
    vault = svc.vault
    key = vault.lookup_hash(session, "ratelimit", "followup:" + receipts.canonical_code(code))
    limiter = FailureLimiter(svc.redis, None, limits)
    limiter.check(key)
    found = open_followup(session, vault, code, passphrase)
    if found is None:
        limiter.record_failure(key)
    return found


def add_followup(
    session: Session, vault: Vault, rules: RuleSet, tip: Tip, *, text: str, now: datetime
) -> FollowupResult:
    """Store a student's web follow-up sealed and re-triage it; the caller commits.

    Severity only goes up: a later "jk" must not quiet a tip that was already life-safety.
    """
    clean = records.clean_text(text)
    if not clean.strip():
        raise EmptyTip("the message is empty")
    msg = records.add_message(
        session, vault, tip, direction="in", channel="web", text=clean, now=now
    )
    verdict = classify(clean, rules=rules)
    escalated = LEVELS[verdict.severity] > LEVELS.get(tip.severity, 0)
    if escalated:
        previous = tip.severity
        tip.severity = verdict.severity
        tip.category = verdict.category
        tip.needs_routing = True
        audit.record(
            session,
            "student",
            "tip.escalated",
            tip.id,
            code=tip.code,
            source="web",
            previous=previous,
            severity=tip.severity,
            category=tip.category,
        )
    audit.record(session, "student", "tip.followup", tip.id, code=tip.code, channel="web")
    return FollowupResult(message=msg, escalated=escalated)


KEYED = "k1$"  # a keyed passphrase hash; anything else is argon2 (older tips, the spool)


def keyed_passphrase(session: Session, vault: Vault, receipt_hash: str, passphrase: str) -> str:
    """The stored form of a receipt's passphrase: a keyed hash, salted by its receipt."""
    normal = receipts.normalize_passphrase(passphrase)
    return KEYED + vault.lookup_hash(session, "passphrase", f"{receipt_hash}\x00{normal}")


def _passphrase_matches(session: Session, vault: Vault, tipster: Tipster, passphrase: str) -> bool:
    stored = tipster.passphrase_hash or ""
    if stored.startswith(KEYED):
        expected = keyed_passphrase(session, vault, tipster.receipt_hash or "", passphrase)
        return hmac.compare_digest(stored, expected)
    # Made while the database was down (the spool has no lookup key) or before keyed hashes.
    return passwords.verify_secret(stored, receipts.normalize_passphrase(passphrase))
