"""PDF metadata stripping: an uploaded PDF is stored as its pages, without who made it.

A PDF exported from a word processor names its author in the document information (/Info)
and again in XMP metadata; comments name theirs too, with times. Any of them can name the
student. The pages are copied into a new document (pypdf): the catalog's XMP, the outlines,
the form and the document information are not copied at all; the pages', their images' and
forms' own metadata, and comments' authors and times, are removed from what is. What the
pages show is kept. Pictures embedded in a PDF are not re-encoded: their own EXIF, if any,
stays (the README says so; a photo sent as a photo loses all of it).

Active content goes too: staff open these files, so a PDF must not run anything or carry a
file of its own. The catalog's /OpenAction, /AA, name trees (JavaScript, EmbeddedFiles) and
/AcroForm (with XFA) are not copied; annotations that exist to play or hold something (file
attachments, sound, movies, screens, rich media, 3D) are dropped; form widgets keep their look
but lose the field tree behind them; and a last pass over everything the new document holds
removes every /AA, every action under /A, JavaScript and embedded file streams wherever they
hide. pypdf has no single call for this.
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    PdfObject,
)

MAX_PAGES = 500  # a tip's document, not a book; parsing is bounded by the upload limit too
# Keys that describe who or when rather than what a page shows.
_PAGE_KEYS = ("/Metadata", "/PieceInfo", "/LastModified")
_COMMENT_KEYS = ("/T", "/M", "/CreationDate", "/NM")  # a comment's author, times and name
_KEPT_ANNOTATIONS = frozenset({"/Link", "/Widget"})  # their /T is a field name, not a person
# Annotations whose purpose is to play, open or carry something: nothing of them is kept.
_ACTIVE_ANNOTATIONS = frozenset(
    {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
)
# Keys that run something or carry a file, wherever they appear: additional actions, the
# document's open action, JavaScript, embedded files (name tree and a file spec's streams),
# the interactive form with its XFA, rich media's assets.
_ACTIVE_KEYS = (
    "/AA",
    "/OpenAction",
    "/JS",
    "/JavaScript",
    "/EmbeddedFiles",
    "/EF",
    "/AcroForm",
    "/XFA",
    "/RichMediaContent",
    "/Names",
)

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
        _deactivate(writer.root_object, set())
        out = io.BytesIO()
        writer.write(out)
    except (PdfRejected, MemoryError):
        raise  # out of memory is the sandbox's to report, not "not a PDF"
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
    page.pop(NameObject("/AA"), None)
    annotations = page.get("/Annots")
    if annotations is None:
        return
    kept = ArrayObject()
    for ref in annotations.get_object():
        note = ref.get_object()
        if not isinstance(note, DictionaryObject) or note.get("/Subtype") in _ACTIVE_ANNOTATIONS:
            continue  # dropped before the copy, so what it holds is never copied
        kept.append(ref)
        for key in ("/A", "/AA"):
            note.pop(NameObject(key), None)
        if note.get("/Subtype") == "/Widget":
            note.pop(NameObject("/Parent"), None)  # the form's fields: their actions and names
        elif note.get("/Subtype") not in _KEPT_ANNOTATIONS:
            for key in _COMMENT_KEYS:
                note.pop(NameObject(key), None)
            note.pop(NameObject("/Popup"), None)
    page[NameObject("/Annots")] = kept


def _deactivate(obj: PdfObject, seen: set[int]) -> None:
    """Remove actions, JavaScript and embedded files from everything reachable from `obj`."""
    if isinstance(obj, IndirectObject):
        if obj.idnum in seen:
            return
        seen.add(obj.idnum)
        obj = obj.get_object() or NullObject()
    if isinstance(obj, DictionaryObject):  # a stream's dictionary too
        for key in _ACTIVE_KEYS:
            obj.pop(NameObject(key), None)
        action = obj.get("/A")
        if action is not None and _is_action(action.get_object()):
            del obj[NameObject("/A")]
        for value in list(obj.values()):
            _deactivate(value, seen)
    elif isinstance(obj, ArrayObject):
        for item in obj:
            _deactivate(item, seen)


def _is_action(obj: PdfObject) -> bool:
    return isinstance(obj, DictionaryObject) and ("/S" in obj or obj.get("/Type") == "/Action")
