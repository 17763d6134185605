"""PDF metadata stripping: an uploaded PDF is stored as its pages, without who made it.

A PDF exported from a word processor names its author in the document information (/Info)
and again in XMP metadata; comments name theirs too, with times. Any of them can name the
student. The pages are copied into a new document (pypdf): the catalog's XMP, the outlines,
the form and the document information are not copied at all; the pages', their images' and
forms' own metadata, and comments' authors and times, are removed from what is. What the
pages show is kept. Pictures embedded in a PDF are not re-encoded: their own EXIF, if any,
stays (the README says so; a photo sent as a photo loses all of it).
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, NameObject

MAX_PAGES = 500  # a tip's document, not a book; parsing is bounded by the upload limit too
# Keys that describe who or when rather than what a page shows.
_PAGE_KEYS = ("/Metadata", "/PieceInfo", "/LastModified")
_COMMENT_KEYS = ("/T", "/M", "/CreationDate", "/NM")  # a comment's author, times and name
_KEPT_ANNOTATIONS = frozenset({"/Link", "/Widget"})  # their /T is a field name, not a person

# pypdf warns about sloppy files (every phone's PDF export is one); the warnings name byte
# offsets and object numbers, nothing a student wrote, but they are noise in an operator's log.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfRejected(ValueError):
    """Not a PDF pypdf can read (`reason` "type"), or too many pages ("size")."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"pdf rejected: {reason}")
        self.reason = reason


def strip(data: bytes) -> bytes:
    """The PDF's pages in a new document without metadata; raises PdfRejected."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfRejected("type")  # a password we do not have: staff could not open it
        if not reader.pages:
            raise PdfRejected("type")
        if len(reader.pages) > MAX_PAGES:
            raise PdfRejected("size")
        writer = PdfWriter()
        for page in reader.pages:
            _scrub(page)  # before the copy: what a page no longer refers to is not copied
            writer.add_page(page)
        writer.metadata = None  # no /Info at all, not even pypdf's own /Producer
        out = io.BytesIO()
        writer.write(out)
    except PdfRejected:
        raise
    except Exception:  # hostile bytes make pypdf raise many types; each means "not a PDF"
        raise PdfRejected("type") from None
    return out.getvalue()


def _scrub(page: DictionaryObject) -> None:
    for key in _PAGE_KEYS:
        page.pop(NameObject(key), None)
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is not None:
        for ref in xobjects.get_object().values():
            xobject = ref.get_object()
            for key in _PAGE_KEYS:
                xobject.pop(NameObject(key), None)
    annotations = page.get("/Annots")
    for ref in annotations.get_object() if annotations is not None else ():
        note = ref.get_object()
        if note.get("/Subtype") not in _KEPT_ANNOTATIONS:
            for key in _COMMENT_KEYS:
                note.pop(NameObject(key), None)
            note.pop(NameObject("/Popup"), None)
