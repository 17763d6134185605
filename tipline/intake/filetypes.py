"""What an uploaded file really is, from its first bytes: pure, no Flask, no database.

The web request and the MMS worker only sniff and count bytes here; decoding happens in the
sandbox (`tipline.intake.sandbox`), which imports this module and the cleaners and nothing else.
"""

from __future__ import annotations

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


def refusal(data: bytes) -> str | None:
    """Why the bytes cannot be an attachment before any decoding ("size", "type"); else None."""
    if len(data) > MAX_ATTACHMENT:
        return "size"
    if sniff(data) is None:
        return "type"
    return None
