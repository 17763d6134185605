"""Web intake: a tip with an optional attachment, its receipt, and follow-ups by receipt.

Plain functions over a session, a vault and the triage rules; the caller commits, and only
after the commit hands it to the worker for routing (`queueing.hand_off_route`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.db import new_id
from tipline.intake import imageclean, pdfclean, receipts, records
from tipline.intake.records import IntakeError
from tipline.models import Attachment, Message, School, Tip, Tipster
from tipline.platform.ratelimit import FailureLimiter, Limits
from tipline.platform.services import Services
from tipline.triage import RuleSet, classify
from tipline.triage.verdict import LEVELS
from tipline.vault import audit, passwords
from tipline.vault.keyring import Vault

MAX_ATTACHMENT = 5 * 1024 * 1024
# Sniffed from the first bytes, never from the name or the declared type a browser sends:
# a renamed executable must not reach staff as "an image".
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
# HEIF brands (ISO/IEC 23008-12) phones use for photos, after the box header "....ftyp".
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


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


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are, among the accepted ones; None otherwise."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:
        return "image/heic"
    return None


def check_attachment(data: bytes) -> str:
    """The sniffed content type of an acceptable attachment; raises AttachmentRejected."""
    if len(data) > MAX_ATTACHMENT:
        raise AttachmentRejected("size")
    content_type = sniff(data)
    if content_type is None:
        raise AttachmentRejected("type")
    return content_type


def prepare_attachment(data: bytes) -> tuple[bytes, str]:
    """The file as it is stored (an image or PDF without its metadata) and the type of it.

    The type is the sniffed one, except for a converted picture (a HEIC is stored as a JPEG).
    Raises AttachmentRejected: a file that sniffs as an image but does not decode as one is
    refused like any other wrong type, and a decompression bomb like a file over the limit.
    """
    content_type = check_attachment(data)
    try:
        if content_type == "application/pdf":
            return pdfclean.strip(data), content_type
        return imageclean.strip(data, content_type)
    except (imageclean.ImageRejected, pdfclean.PdfRejected) as e:
        raise AttachmentRejected(e.reason) from None


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
    spooled: SpooledReceipt | None = None,
) -> WebReceipt:
    """Store a sealed web tip, its attachment and a new receipt; the caller commits.

    `spooled`: the receipt was made while the database was down (`tipline.intake.outage`);
    it is kept, and the returned passphrase is empty (only its hash was kept).
    """
    clean = records.clean_text(text)
    if not clean.strip():
        raise EmptyTip("the tip is empty")
    # Before anything is written: EXIF GPS, phone model and time never reach the database.
    prepared = prepare_attachment(attachment) if attachment is not None else None
    code = spooled.code if spooled is not None else receipts.new_code()
    passphrase = "" if spooled is not None else receipts.new_passphrase()
    passphrase_hash = (
        spooled.passphrase_hash
        if spooled is not None
        else passwords.hash_secret(receipts.normalize_passphrase(passphrase))
    )
    # The code is only a keyed hash (a stolen database cannot be searched for a code without
    # the lookup key) and the passphrase only an argon2 hash (slow to guess offline).
    tipster = Tipster(
        id=new_id(),
        kind="web",
        receipt_hash=vault.lookup_hash(session, "receipt", code),
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
    if prepared is not None:
        store_attachment(session, vault, tip, *prepared, now=now)
    return WebReceipt(tip=tip, code=receipts.format_code(code), passphrase=passphrase)


def store_attachment(
    session: Session,
    vault: Vault,
    tip: Tip,
    data: bytes,
    content_type: str,
    *,
    now: datetime,
    message_id: str | None = None,
) -> Attachment:
    """Seal an accepted file under a data key of its own, so it can be shredded alone."""
    att = Attachment(
        id=new_id(),
        tip_id=tip.id,
        message_id=message_id,
        content_type=content_type,
        size=len(data),
        status="stored",
        data_key=vault.new_data_key(),
        created_at=now,
    )
    vault.put(att, "content", data)
    session.add(att)
    audit.record(session, "student", "attachment.stored", tip.id, content_type=content_type)
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
    candidate = receipts.normalize_passphrase(passphrase)
    if tipster is None or tipster.passphrase_hash is None:
        # Spend the same argon2 time as a real check: a fast "no such code" would be an oracle.
        passwords.verify_secret(_dummy_hash(), candidate)
        return None
    if not passwords.verify_secret(tipster.passphrase_hash, candidate) or tipster.blocked:
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


_DUMMY: dict[int, str] = {}


def _dummy_hash() -> str:
    """An argon2 hash of nothing anyone knows, made with the current hasher's parameters."""
    key = id(passwords.hasher())
    if key not in _DUMMY:
        _DUMMY.clear()
        _DUMMY[key] = passwords.hash_secret(secrets.token_hex(16))
    return _DUMMY[key]
