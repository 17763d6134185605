"""Image metadata stripping: an uploaded picture is stored as its pixels and nothing else.

A student's photo can carry the GPS position it was taken at, the phone's make, model and
serial number and the minute it was taken (EXIF, XMP, IPTC, PNG text chunks, comments,
thumbnails, MPO depth maps). Editing those out means knowing every place a camera may hide
them; decoding the picture and encoding its pixels afresh keeps nothing else, by construction.
An iPhone's HEIC comes back as a JPEG (staff browsers cannot show HEIC). Pure bytes in, bytes
and their content type out: web intake and the MMS worker both call `strip`.
"""

from __future__ import annotations

import io
from typing import Any

import pillow_heif
from PIL import Image, ImageOps, ImageSequence, JpegImagePlugin

# HEIC decoding through libheif: registering adds the format to Pillow's list and sets
# pillow_heif's own options, nothing else. A HEIC's thumbnails, depth maps and auxiliary images
# (each with metadata of its own) are not even read: only the primary picture's pixels are kept.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# Decoded pixels cost memory (up to 4 bytes each), whatever the file's size: the cap refuses a
# small file that claims to be a huge picture (a decompression bomb) before any pixel is
# decoded. 50 million is a 50-megapixel phone photo; an animation's frames count together.
# Pillow's own global MAX_IMAGE_PIXELS (~89M) stays as it is: this cap is lower and local.
MAX_PIXELS = 50_000_000
MAX_FRAMES = 500
FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
}
# Re-encoded in another format (and stored under its type): the decoder's, then the encoder's.
CONVERTED = {"image/heic": ("JPEG", "image/jpeg")}
# All a re-encoded frame keeps of what the decoder read: how it animates and which colour is
# transparent. Everything else (exif, xmp, icc_profile, comment, dpi, text chunks) is dropped.
_KEEP = frozenset({"duration", "loop", "disposal", "blend", "transparency", "background"})
WEBP_QUALITY = 90  # lossy WebP has no quantization tables to copy; close to what phones send
JPEG_QUALITY = 90  # for a converted HEIC, which has no JPEG tables to copy either


class ImageRejected(ValueError):
    """The bytes are not a picture of their type (`reason` "type") or too big a one ("size")."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"image rejected: {reason}")
        self.reason = reason


def strip(data: bytes, content_type: str) -> tuple[bytes, str]:
    """The picture re-encoded upright without any metadata, and the content type it now has.

    `content_type` is the sniffed type, never a declared one. Pictures keep their format, except
    those in CONVERTED (a PDF is `tipline.intake.pdfclean`'s). Raises ImageRejected for anything
    that does not decode as its type.
    """
    fmt = FORMATS.get(content_type)
    if fmt is None:
        raise ImageRejected("type")
    out_fmt, out_type = CONVERTED.get(content_type, (fmt, content_type))
    out = io.BytesIO()
    try:
        # Only the sniffed type's decoder: bytes that start like a JPEG are read as a JPEG.
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            # A HEIC's size is the one its header declares, already turned as libheif shows it.
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageRejected("size")
            frames = _frames(img, fmt)
            frames[0].save(out, format=out_fmt, **_options(img, fmt, frames, data))
    except (ImageRejected, MemoryError):
        raise  # out of memory is the sandbox's to report, not "not an image"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("size") from None
    except Exception:  # hostile bytes make Pillow raise many types; each means "not an image"
        raise ImageRejected("type") from None
    return out.getvalue(), out_type


def _frames(img: Image.Image, fmt: str) -> list[Image.Image]:
    """Every frame upright, with a fresh `info`; the pixel budget is spent before decoding."""
    if fmt == "JPEG":
        # A phone JPEG's further frames (MPO) are previews and depth maps with EXIF of their own.
        return [_clean(img)]
    if fmt == "HEIF":
        return [_heif_primary(img)]
    frames: list[Image.Image] = []
    budget = MAX_PIXELS
    for index, frame in enumerate(ImageSequence.Iterator(img)):
        budget -= frame.width * frame.height
        if index >= MAX_FRAMES or budget < 0:
            raise ImageRejected("size")
        frames.append(_clean(frame))
    return frames


def _clean(frame: Image.Image) -> Image.Image:
    upright = ImageOps.exif_transpose(frame)  # a copy, turned the way the camera was held
    upright.info = {k: v for k, v in frame.info.items() if k in _KEEP}
    return upright


def _heif_primary(img: Image.Image) -> Image.Image:
    """A HEIC's primary picture, as JPEG can hold it; its bursts and other images are dropped.

    libheif has already turned the pixels upright (the irot/imir boxes, which a HEIC's EXIF
    orientation only repeats; pillow_heif resets that tag to 1, so nothing is turned twice).
    """
    picture = _clean(img)
    # The header's size is what was checked; the decoded size is what memory holds.
    if picture.width * picture.height > MAX_PIXELS:
        raise ImageRejected("size")
    if picture.mode not in {"RGB", "L"}:
        picture = picture.convert("RGB")  # JPEG has no alpha; a photo has none to lose
    return picture


def _options(img: Image.Image, fmt: str, frames: list[Image.Image], data: bytes) -> dict[str, Any]:
    """Encoder settings that keep the picture's quality and animation, and no metadata."""
    opts: dict[str, Any] = {}
    if len(frames) > 1:
        opts.update(
            save_all=True,
            append_images=frames[1:],
            duration=[f.info.get("duration", 0) for f in frames],
        )
        if "loop" in frames[0].info:
            opts["loop"] = frames[0].info["loop"]
    if fmt == "HEIF":
        opts["quality"] = JPEG_QUALITY
    elif fmt == "JPEG":
        # The original's quantization tables: the same quality, not a guessed one.
        tables = getattr(img, "quantization", None)
        if tables:
            opts["qtables"] = tables
        sampling = JpegImagePlugin.get_sampling(img)
        if sampling != -1:
            opts["subsampling"] = sampling
    elif fmt == "WEBP":
        lossless = _webp_lossless(data)
        opts.update(lossless=lossless, quality=100 if lossless else WEBP_QUALITY)
    return opts


def _webp_lossless(data: bytes) -> bool:
    """Whether the first image chunk of a WebP (RIFF) file is lossless (VP8L)."""
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        if kind in {b"VP8 ", b"VP8L"}:
            return kind == b"VP8L"
        if kind == b"ANMF":  # a frame: 16 bytes of header, then its own chunks
            pos += 8 + 16
            continue
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return False
