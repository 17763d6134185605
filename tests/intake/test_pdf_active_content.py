"""A PDF sent with a tip is stored without anything that runs or carries a file.

The attack: a student (or someone posing as one) uploads a PDF that, once staff open it, runs
JavaScript, launches a program, opens a link, or drops an embedded file. Each way a PDF can do
that is built into one file here; none of it may survive in what the vault stores.
"""

from __future__ import annotations

import io

from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)
from sqlalchemy import select

from tests.support.media import attachment_state, run_media_worker
from tests.support.web import Page, post_tip
from tipline.extensions import db
from tipline.intake import pdfclean
from tipline.models import Attachment
from tipline.platform.services import services

# One marker per hiding place: the stored bytes must hold none of them (letters only: pypdf
# writes punctuation in strings as octal escapes).
MARKERS = {
    "open": "OPENACTIONMARKER",
    "doc_aa": "DOCUMENTAAMARKER",
    "page_aa": "PAGEAAMARKER",
    "name_tree": "NAMETREEJSMARKER",
    "embedded": "EMBEDDEDFILEMARKER",
    "xfa": "XFAMARKER",
    "field_aa": "FIELDAAMARKER",
    "widget_a": "WIDGETAMARKER",
    "link_a": "LINKLAUNCHMARKER",
    "link_aa": "LINKAAMARKER",
    "uri": "URIMARKER",
    "attached": "ANNOTFILEMARKER",
}
ACTIVE_KEYS = (
    "/OpenAction",
    "/AA",
    "/JS",
    "/JavaScript",
    "/EmbeddedFiles",
    "/EF",
    "/AcroForm",
    "/XFA",
)
SHOWN = "the schedule they posted"


def js(marker: str) -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Action"),
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject(f"app.alert('{marker}')"),
        }
    )


def rect(x: float) -> ArrayObject:
    return ArrayObject([FloatObject(x), FloatObject(700), FloatObject(x + 40), FloatObject(740)])


def stream(writer: PdfWriter, data: bytes, **entries: PdfObject) -> IndirectObject:
    obj = StreamObject()
    obj.set_data(data)
    for key, value in entries.items():
        obj[NameObject(f"/{key}")] = value
    return writer._add_object(obj)


def armed_pdf() -> bytes:
    """One page that shows text, with every kind of active content a PDF can carry."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    content = f"BT /F1 12 Tf 72 720 Td ({SHOWN}) Tj ET".encode()
    page[NameObject("/Contents")] = stream(writer, content)
    root = writer.root_object
    root[NameObject("/OpenAction")] = js(MARKERS["open"])
    root[NameObject("/AA")] = DictionaryObject({NameObject("/WC"): js(MARKERS["doc_aa"])})
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): js(MARKERS["page_aa"])})
    writer.add_attachment("payload.exe", MARKERS["embedded"].encode())  # /Names /EmbeddedFiles
    names = root["/Names"].get_object()
    names[NameObject("/JavaScript")] = DictionaryObject(
        {
            NameObject("/Names"): ArrayObject(
                [TextStringObject("init"), writer._add_object(js(MARKERS["name_tree"]))]
            )
        }
    )

    field = writer._add_object(
        DictionaryObject(
            {
                NameObject("/FT"): NameObject("/Tx"),
                NameObject("/T"): TextStringObject("name"),
                NameObject("/AA"): DictionaryObject({NameObject("/K"): js(MARKERS["field_aa"])}),
            }
        )
    )
    widget = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/Rect"): rect(50),
            NameObject("/Parent"): field,
            NameObject("/A"): js(MARKERS["widget_a"]),
        }
    )
    launch = DictionaryObject(
        {
            NameObject("/S"): NameObject("/Launch"),
            NameObject("/F"): TextStringObject(MARKERS["link_a"]),
        }
    )
    link = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Link"),
            NameObject("/Rect"): rect(100),
            NameObject("/A"): launch,
            NameObject("/AA"): DictionaryObject({NameObject("/E"): js(MARKERS["link_aa"])}),
        }
    )
    uri = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Link"),
            NameObject("/Rect"): rect(150),
            NameObject("/A"): DictionaryObject(
                {
                    NameObject("/S"): NameObject("/URI"),
                    NameObject("/URI"): TextStringObject(f"https://evil.example/{MARKERS['uri']}"),
                }
            ),
        }
    )
    filespec = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Filespec"),
            NameObject("/F"): TextStringObject("note.exe"),
            NameObject("/EF"): DictionaryObject(
                {
                    NameObject("/F"): stream(
                        writer, MARKERS["attached"].encode(), Type=NameObject("/EmbeddedFile")
                    )
                }
            ),
        }
    )
    attached = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/FileAttachment"),
            NameObject("/Rect"): rect(200),
            NameObject("/FS"): filespec,
        }
    )
    refs = [writer._add_object(a) for a in (widget, link, uri, attached)]
    page[NameObject("/Annots")] = ArrayObject(refs)
    field.get_object()[NameObject("/Kids")] = ArrayObject([refs[0]])
    root[NameObject("/AcroForm")] = DictionaryObject(
        {
            NameObject("/Fields"): ArrayObject([field]),
            NameObject("/XFA"): stream(writer, f"<xdp>{MARKERS['xfa']}</xdp>".encode()),
        }
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def keys_anywhere(reader: PdfReader) -> set[str]:
    """Every dictionary key in every object the document holds (streams' dictionaries too)."""
    found: set[str] = set()
    seen: set[int] = set()

    def walk(obj: PdfObject) -> None:
        if isinstance(obj, IndirectObject):
            if obj.idnum in seen:
                return
            seen.add(obj.idnum)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):
            for key, value in obj.items():
                found.add(str(key))
                if key == "/A" and isinstance(value.get_object(), DictionaryObject):
                    found.add("/A (action)")
                walk(value)
        elif isinstance(obj, ArrayObject):
            for item in obj:
                walk(item)

    walk(reader.trailer)
    return found


def test_the_armed_pdf_really_carries_everything() -> None:
    pdf = armed_pdf()
    for marker in MARKERS.values():
        assert marker.encode() in pdf, marker
    keys = keys_anywhere(PdfReader(io.BytesIO(pdf)))
    assert set(ACTIVE_KEYS) | {"/A (action)", "/Names"} <= keys


def test_a_web_pdf_is_stored_without_actions_javascript_forms_or_files(
    app: Flask, client: FlaskClient
) -> None:
    resp = post_tip(client, "see attached", attachment=(armed_pdf(), "a.pdf", "application/pdf"))
    assert resp.status_code == 200
    assert Page(resp.get_data(as_text=True)).text("receipt-code")
    assert attachment_state(app) == "checking"  # the request only sealed it as it came
    run_media_worker(app)  # the sandbox cleans it
    with app.app_context():
        att = db.session.scalars(select(Attachment)).one()
        assert att.status == "stored"
        content = services(app).vault.get_bytes(att, "content")
    assert content is not None
    for marker in MARKERS.values():
        assert marker.encode() not in content, marker
    for key in (*ACTIVE_KEYS, "/Launch", "/URI", "/FileAttachment"):
        assert key.encode() not in content, key
    reader = PdfReader(io.BytesIO(content))
    keys = keys_anywhere(reader)
    assert not keys & {*ACTIVE_KEYS, "/A (action)", "/Names"}
    [page] = reader.pages
    assert SHOWN.encode() in page.get_contents().get_data()  # what the page shows stays
    subtypes = sorted(a.get_object()["/Subtype"] for a in page["/Annots"])
    assert subtypes == ["/Link", "/Link", "/Widget"]  # only the file attachment is gone


def test_a_pdf_action_is_removed_however_deep_it_hides() -> None:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    # an outline-like chain of actions reached through a page's resources, not an annotation
    chained = js("NEXTMARKER")
    first = js("FIRSTMARKER")
    first[NameObject("/Next")] = chained
    holder = DictionaryObject({NameObject("/A"): first})
    writer.pages[0][NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Properties"): DictionaryObject({NameObject("/MC0"): holder})}
    )
    out = io.BytesIO()
    writer.write(out)
    cleaned = pdfclean.strip(out.getvalue())
    assert b"MARKER" not in cleaned  # FIRSTMARKER, NEXTMARKER
    assert b"/JavaScript" not in cleaned
