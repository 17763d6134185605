"""Web-intake helpers: a parser for what a browser without JavaScript sees, posting tips."""

from __future__ import annotations

import io
import json
import struct
import zlib
from html.parser import HTMLParser
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tipline.extensions import db
from tipline.models import Tip

# -- helpers shared with test_followup ------------------------------------------------------


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Page(HTMLParser):
    """What a browser without JavaScript sees: inputs, labels, and the text of elements by id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.by_id: dict[str, str] = {}
        self._stack: list[tuple[str, str | None, list[str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in {"input", "textarea", "select"}:
            self.inputs.append({"tag": tag, **a})
        if tag not in VOID:
            self._stack.append((tag, a.get("id"), []))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            name, ident, parts = self._stack.pop()
            if ident:
                self.by_id[ident] = "".join(parts)
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _tag, _ident, parts in self._stack:
            parts.append(data)

    def text(self, ident: str) -> str:
        return self.by_id[ident].strip()

    def value(self, name: str) -> str:
        for field in self.inputs:
            if field.get("name") == name:
                return field.get("value") or ""
        raise KeyError(name)

    def text_inputs(self) -> list[dict[str, str | None]]:
        return [f for f in self.inputs if f["tag"] == "input" and f.get("type") == "text"]

    def attrs(self, ident: str) -> dict[str, str | None]:
        return next(a for _tag, a in self.tags if a.get("id") == ident)


def csrf_from(client: FlaskClient, url: str) -> str:
    return Page(client.get(url).get_data(as_text=True)).value("csrf_token")


def form_tokens(client: FlaskClient, url: str) -> dict[str, str]:
    """The CSRF token and the single-use form token of a freshly fetched tip form."""
    page = Page(client.get(url).get_data(as_text=True))
    return {"csrf_token": page.value("csrf_token"), "form_token": page.value("form_token")}


def post_tip(
    client: FlaskClient,
    text: str,
    *,
    school: str = "lincoln",
    query: str = "",
    attachment: tuple[bytes, str, str] | None = None,
) -> Any:
    url = f"/tip/{school}{query}"
    data: dict[str, Any] = {**form_tokens(client, url), "text": text}
    if attachment is not None:
        content, name, declared = attachment
        data["attachment"] = FileStorage(io.BytesIO(content), name, content_type=declared)
    # Encoded in memory: the test client would spool a big body to a file it never closes.
    boundary, body = encode_multipart(data)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def submit_tip(client: FlaskClient, text: str, **kw: Any) -> tuple[str, str]:
    """Send a tip through the form; the receipt code and passphrase it shows."""
    resp = post_tip(client, text, **kw)
    assert resp.status_code == 200
    page = Page(resp.get_data(as_text=True))
    return page.text("receipt-code"), page.text("receipt-passphrase")


def dump_tables(app: Flask) -> list[tuple[str, tuple[Any, ...]]]:
    """Every row of every table, as stored."""
    with app.app_context():
        return [
            (table.name, tuple(row))
            for table in db.metadata.sorted_tables
            for row in db.session.execute(table.select())
        ]


def stored_anywhere(rows: list[tuple[str, tuple[Any, ...]]], needle: str) -> bool:
    raw = needle.encode()
    for _table, row in rows:
        for value in row:
            if isinstance(value, bytes | bytearray | memoryview):
                if raw in bytes(value):
                    return True
            elif needle in json.dumps(value, default=str, ensure_ascii=False):
                return True
    return False


def tiny_png() -> bytes:
    """A real 1x1 PNG, built here."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def tip_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Tip)) or 0)
