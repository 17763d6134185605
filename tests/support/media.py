"""MMS helpers: a real picture, a signed MMS webhook, one worker run, an attachment read back."""

from __future__ import annotations

import io
from typing import Any

from flask import Flask
from PIL import Image
from sqlalchemy import select

from tests.conftest import ACCOUNT_SID, post_signed, sms_params
from tipline.extensions import db
from tipline.intake import media
from tipline.models import Attachment
from tipline.platform.services import MEDIA_QUEUE, QUEUE_NAMES, Services, services
from workers.allowlist import JobWorker


def make_png() -> bytes:
    """A real 32x32 picture: media is decoded (and re-encoded) before it is stored."""
    picture = Image.frombytes("RGB", (32, 32), bytes(range(256)) * 12)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.convert("RGB").tobytes()


PNG = make_png()
MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{'1' * 32}/Media/ME{'2' * 32}"


def send_mms(app: Flask, url: str, content_type: str = "image/png", body: str = "") -> str:
    """Post a signed MMS webhook; the id of its one attachment."""
    params = sms_params(
        body or "look at this picture of the fight",
        NumMedia="1",
        MediaUrl0=url,
        MediaContentType0=content_type,
    )
    resp = post_signed(app.test_client(), "/sms/inbound", params)
    assert resp.status_code == 200
    with app.app_context():
        newest = db.session.scalars(select(Attachment.id).order_by(Attachment.created_at.desc()))
        att_id = newest.first()
    assert att_id is not None
    return att_id


def run_worker(app: Flask) -> None:
    svc = services(app)
    with app.app_context():
        JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis).work(burst=True)


def run_media_worker(app: Flask) -> None:
    """The media worker's queue alone, until empty: web uploads checked in the sandbox."""
    svc = services(app)
    with app.app_context():
        JobWorker([svc.queue(MEDIA_QUEUE)], connection=svc.redis).work(burst=True)


def attachment_state(app: Flask, att_id: str | None = None) -> str:
    """The status of the one attachment (or `att_id`)."""
    with app.app_context():
        if att_id is None:
            att_id = db.session.scalars(select(Attachment.id)).one()
        status = db.session.scalar(select(Attachment.status).where(Attachment.id == att_id))
        assert status is not None
        return status


def fetch(app: Flask, att_id: str, svc: Services | None = None, **kw: Any) -> str:
    with app.app_context():
        return media.fetch_and_store(db.session(), svc or services(app), att_id, **kw)


def attachment(app: Flask, att_id: str) -> tuple[Attachment, bytes | None]:
    with app.app_context():
        att = db.session.get(Attachment, att_id)
        assert att is not None
        content = services(app).vault.get_bytes(att, "content")
        db.session.expunge(att)
        return att, content
