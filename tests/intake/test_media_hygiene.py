"""Media hygiene: pictures are stored without their metadata, and Twilio forgets MMS media."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image, PngImagePlugin
from pypdf import PdfReader, PdfWriter
from pypdf.annotations import Text
from pypdf.generic import NameObject, StreamObject, TextStringObject
from sqlalchemy import select, text

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.fakes import FakeTwilio, start_fake_twilio
from tests.support.media import (
    MEDIA_PATH,
    PNG,
    attachment,
    attachment_state,
    fetch,
    run_media_worker,
    run_worker,
    send_mms,
)
from tests.support.web import Page, post_tip, tip_count
from tipline.db import utcnow
from tipline.extensions import db
from tipline.intake import imageclean, media, pdfclean
from tipline.models import Attachment, AuditEvent
from tipline.outbox import notifier
from tipline.platform import sweeper
from tipline.platform.services import MEDIA_QUEUE, services

# Markers a camera would write: each must be gone from what is stored.
PHONE = "TIPLINE-PHONE-MODEL"
GPS_DATUM = "TIPLINE-GPS-WHERE"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">TIPLINE-XMP-SECRET</x:xmpmeta>'
COMMENT = b"TIPLINE-COMMENT-SECRET"
TEXT = "TIPLINE-PNG-TEXT-SECRET"
MARKERS = (PHONE.encode(), GPS_DATUM.encode(), b"TIPLINE-XMP", COMMENT, TEXT.encode())
LATITUDE = (41.0, 52.0, 12.5)
BLUE_CORNER = (0, 0, 10, 10)  # of a 40x20 red picture, held sideways (EXIF orientation 6)


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = PHONE
    exif[ExifTags.Base.Model] = PHONE
    exif[ExifTags.Base.DateTimeOriginal] = "2025:03:14 07:58:00"
    exif[ExifTags.Base.Orientation] = 6  # the phone was turned: show it rotated 90° clockwise
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: LATITUDE,
        ExifTags.GPS.GPSMapDatum: GPS_DATUM,
    }
    return exif


def photo(fmt: str) -> bytes:
    """A 40x20 picture with a blue corner, carrying what a phone camera would write into it."""
    picture = Image.new("RGB", (40, 20), (255, 0, 0))
    picture.paste((0, 0, 255), BLUE_CORNER)
    extra: dict[str, object] = {}
    if fmt == "JPEG":
        extra = {"exif": camera_exif(), "xmp": XMP, "comment": COMMENT}
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", TEXT)
        text.add_itxt("XML:com.adobe.xmp", XMP.decode())
        extra = {"exif": camera_exif(), "pnginfo": text}
    elif fmt == "WEBP":
        extra = {"exif": camera_exif(), "xmp": XMP, "lossless": True}
    elif fmt == "GIF":
        extra = {"comment": COMMENT}
    out = io.BytesIO()
    picture.save(out, format=fmt, **extra)
    data = out.getvalue()
    assert any(marker in data for marker in MARKERS)  # the fixture really carries metadata
    return data


def iphone_heic() -> bytes:
    """A HEIC like an iPhone's: stored sideways with an irot box, GPS and phone model in EXIF.

    The sideways 20x40 pixels, turned by the rotation a HEIF reader applies, are the 40x20
    picture with its blue corner at top right that `assert_clean_and_upright` expects.
    """
    sideways = Image.new("RGB", (40, 20), (255, 0, 0))
    sideways.paste((0, 0, 255), BLUE_CORNER)
    out = io.BytesIO()
    # EXIF as bytes: pillow_heif then writes its orientation as the irot box, as phones do.
    sideways.save(out, format="HEIF", exif=camera_exif().tobytes(), xmp=XMP)
    data = out.getvalue()
    assert data[4:12] == b"ftypheic"
    assert b"irot" in data
    assert PHONE.encode() in data
    assert GPS_DATUM.encode() in data
    return data


def assert_clean_and_upright(data: bytes, fmt: str) -> None:
    """No metadata left anywhere in the bytes, and the picture the way it was taken."""
    for marker in MARKERS:
        assert marker not in data
    assert b"Exif\x00\x00" not in data
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == fmt
        exif = picture.getexif()
        assert dict(exif) == {}
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert not {"exif", "xmp", "icc_profile", "comment", "Comment", "XML:com.adobe.xmp"} & set(
            picture.info
        )
        rgb = picture.convert("RGB")
    if fmt == "GIF":  # GIF has no EXIF, so no orientation to apply
        assert rgb.size == (40, 20)
        corner, elsewhere = rgb.getpixel((2, 2)), rgb.getpixel((30, 15))
    else:  # turned upright: 20 wide, 40 tall, the blue corner now top right
        assert rgb.size == (20, 40)
        corner, elsewhere = rgb.getpixel((15, 2)), rgb.getpixel((5, 30))
    assert isinstance(corner, tuple)
    assert isinstance(elsewhere, tuple)
    assert corner[2] > 200  # blue
    assert corner[0] < 60
    assert elsewhere[0] > 200  # red
    assert elsewhere[2] < 60


def stored_content(app: Flask) -> tuple[Attachment, bytes]:
    """The one attachment once the media worker has checked it, decrypted back through the
    vault."""
    assert attachment_state(app) == "checking"  # the request only sealed it as it came
    run_media_worker(app)
    with app.app_context():
        att = db.session.scalars(select(Attachment)).one()
        content = services(app).vault.get_bytes(att, "content")
        db.session.expunge(att)
    assert content is not None
    return att, content


# -- web uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_web_photo_is_stored_without_its_metadata_and_upright(
    app: Flask, client: FlaskClient, fmt: str, content_type: str
) -> None:
    resp = post_tip(
        client, "photo of the threat", attachment=(photo(fmt), "IMG_0001.x", content_type)
    )
    assert resp.status_code == 200
    assert Page(resp.get_data(as_text=True)).text("receipt-code")
    att, content = stored_content(app)
    assert (att.status, att.content_type, att.size) == ("stored", content_type, len(content))
    assert_clean_and_upright(content, fmt)


def test_web_heic_is_stored_as_a_jpeg_without_its_metadata_and_upright(
    app: Flask, client: FlaskClient
) -> None:
    heic = iphone_heic()
    resp = post_tip(client, "photo of the threat", attachment=(heic, "IMG_0001.HEIC", "image/heic"))
    assert resp.status_code == 200
    assert Page(resp.get_data(as_text=True)).text("receipt-code")
    att, content = stored_content(app)
    assert (att.status, att.content_type, att.size) == ("stored", "image/jpeg", len(content))
    assert content.startswith(b"\xff\xd8\xff")  # the type stored is what the bytes are
    assert b"ftyp" not in content
    assert_clean_and_upright(content, "JPEG")


AUTHOR = "Maria Lopez-Garcia"


def authored_pdf() -> bytes:
    """A two-page PDF as a word processor leaves it: its author in /Info, in XMP (document and
    page), and a comment by her on page 1, with its time."""
    writer = PdfWriter()
    for _ in range(2):
        writer.add_blank_page(612, 792)
    writer.add_metadata({"/Author": AUTHOR, "/Title": "schedule", "/CreationDate": "D:20261201"})
    xmp = StreamObject()
    xmp.set_data(f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{AUTHOR}</dc:creator>'.encode())
    xmp[NameObject("/Type")] = NameObject("/Metadata")
    writer._root_object[NameObject("/Metadata")] = writer._add_object(xmp)
    writer.pages[0][NameObject("/Metadata")] = writer._add_object(xmp)
    writer.add_annotation(0, Text(text="they meet at the bleachers", rect=(50, 550, 200, 650)))
    writer.pages[0]["/Annots"][0].get_object()[NameObject("/T")] = TextStringObject(AUTHOR)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_web_pdf_is_stored_as_its_pages_without_its_author(app: Flask, client: FlaskClient) -> None:
    pdf = authored_pdf()
    assert AUTHOR.encode() in pdf
    resp = post_tip(
        client, "the schedule they posted", attachment=(pdf, "a.pdf", "application/pdf")
    )
    assert resp.status_code == 200
    att, content = stored_content(app)
    assert att.content_type == "application/pdf"
    assert AUTHOR.encode() not in content
    assert b"schedule" not in content  # the title goes with the rest of /Info
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) == 2
    assert reader.metadata is None
    [comment] = [a.get_object() for a in reader.pages[0]["/Annots"]]
    assert comment["/Contents"] == "they meet at the bleachers"  # what the page shows stays


def refused_after_the_check(app: Flask, client: FlaskClient, upload: tuple[bytes, str, str]) -> str:
    """Post a tip with `upload`: the tip is taken at once, the file refused by the sandbox
    afterwards and its raw bytes shredded. The reason recorded."""
    resp = post_tip(client, "see attached", attachment=upload)
    assert resp.status_code == 200
    page = Page(resp.get_data(as_text=True))
    assert page.text("receipt-code")  # the tip never waits for its file
    assert "Traceback" not in page.html
    assert tip_count(app) == 1
    assert attachment_state(app) == "checking"
    run_media_worker(app)
    with app.app_context():
        att = db.session.scalars(select(Attachment)).one()
        assert (att.status, att._content, att.data_key_id) == ("rejected", None, None)
        [event] = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "attachment.rejected")
        ).all()
        assert event.detail["attachment_id"] == att.id
        return str(event.detail["reason"])


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n% no objects at all\n%%EOF\n", b"%PDF-1.7\n" + b"\x00" * 200],
    ids=["no-objects", "garbage"],
)
def test_web_pdf_that_does_not_parse_is_refused(
    app: Flask, client: FlaskClient, data: bytes
) -> None:
    assert refused_after_the_check(app, client, (data, "a.pdf", "application/pdf")) == "type"


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"MZ\x90\x00" * 64,
        b"\x89PNG\r\n\x1a\n" + b"<html><script>alert(1)</script>",
        photo("JPEG")[:300],  # cut off in the middle
        b"\x89PNG\r\n\x1a\n",
    ],
    ids=["garbage-after-jpeg-magic", "html-after-png-magic", "truncated-jpeg", "png-magic-only"],
)
def test_web_file_posing_as_an_image_is_refused_by_the_sandbox(
    app: Flask, client: FlaskClient, content: bytes
) -> None:
    assert refused_after_the_check(app, client, (content, "photo.jpg", "image/jpeg")) == "type"


def test_web_file_that_is_no_image_by_its_first_bytes_is_a_form_error(
    app: Flask, client: FlaskClient
) -> None:
    resp = post_tip(client, "see attached", attachment=(b"MZ\x90\x00" * 64, "a.jpg", "image/jpeg"))
    assert resp.status_code == 200
    page = Page(resp.get_data(as_text=True))
    assert "JPEG, PNG, GIF, WebP or HEIC" in page.text("attachment-error")
    assert tip_count(app) == 0


def test_web_decompression_bomb_is_refused_by_the_sandbox(app: Flask, client: FlaskClient) -> None:
    bomb = bomb_png(8000)  # 64 megapixels in a few kilobytes
    assert len(bomb) < 64 * 1024
    assert refused_after_the_check(app, client, (bomb, "big.png", "image/png")) == "size"


# -- MMS fetched by the worker ----------------------------------------------------------------


def test_mms_photo_is_stored_without_its_metadata_and_deleted_at_twilio(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (photo("JPEG"), "image/jpeg")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH, content_type="image/jpeg")
    run_worker(twilio_app)
    att, content = attachment(twilio_app, att_id)
    assert content is not None
    assert (att.status, att.content_type, att.size) == ("stored", "image/jpeg", len(content))
    assert_clean_and_upright(content, "JPEG")
    assert att._source is None  # the media URL is no longer kept once the bytes are here
    [get, delete] = fake_twilio.requests
    assert (get.method, delete.method) == ("GET", "DELETE")
    assert delete.path == MEDIA_PATH  # the MediaUrl is the media resource itself
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert delete.headers["Authorization"] == f"Basic {expected}"


def test_mms_heic_is_stored_as_a_jpeg_without_its_metadata_and_deleted_at_twilio(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (iphone_heic(), "image/heic")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH, content_type="image/heic")
    run_worker(twilio_app)
    att, content = attachment(twilio_app, att_id)
    assert content is not None
    assert (att.status, att.content_type, att.size) == ("stored", "image/jpeg", len(content))
    assert content.startswith(b"\xff\xd8\xff")
    assert_clean_and_upright(content, "JPEG")
    assert [r.path for r in fake_twilio.deletes()] == [MEDIA_PATH]


def source_kept(app: Flask, att_id: str) -> bool:
    with app.app_context():
        query = text("SELECT source IS NOT NULL FROM attachment WHERE id = :id")
        return bool(db.session.execute(query, {"id": att_id}).scalar_one())


def test_stored_mms_attachment_keeps_no_media_url(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (PNG, "image/png")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert source_kept(twilio_app, att_id)
    assert fetch(twilio_app, att_id) == "stored"
    assert not source_kept(twilio_app, att_id)
    assert attachment(twilio_app, att_id)[1] is not None  # the content itself is still there


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff\xe0" + b"MZ\x90\x00" * 64, b"GIF89a" + b"\x00" * 40, bytes(photo("PNG")[:60])],
    ids=["exe-after-jpeg-magic", "empty-gif", "truncated-png"],
)
def test_mms_posing_as_an_image_is_rejected_without_a_crash(
    twilio_app: Flask, fake_twilio: FakeTwilio, data: bytes
) -> None:
    fake_twilio.media[MEDIA_PATH] = (data, "image/jpeg")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH, content_type="image/jpeg")
    run_worker(twilio_app)
    att, content = attachment(twilio_app, att_id)
    assert (att.status, content) == ("rejected", None)
    assert services(twilio_app).queue(MEDIA_QUEUE).failed_job_registry.count == 0
    # Of no use to anyone: Twilio is asked to forget it like stored media.
    assert [r.path for r in fake_twilio.deletes()] == [MEDIA_PATH]


def test_mms_too_large_is_rejected_and_deleted_at_twilio(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (PNG + b"\x00" * media.MAX_BYTES, "image/png")
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    run_worker(twilio_app)
    att, content = attachment(twilio_app, att_id)
    assert (att.status, content) == ("rejected", None)
    assert [r.method for r in fake_twilio.requests] == ["GET", "DELETE"]
    assert fake_twilio.deletes()[0].path == MEDIA_PATH


def test_failed_delete_of_rejected_media_is_only_logged(
    twilio_app: Flask, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tipline")
    fake_twilio.media[MEDIA_PATH] = (b"GIF89a" + b"\x00" * 40, "image/gif")
    fake_twilio.delete_failures = [503]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH, content_type="image/gif")
    assert fetch(twilio_app, att_id) == "rejected"
    assert attachment(twilio_app, att_id)[0].status == "rejected"
    assert len(fake_twilio.deletes()) == 1
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tipline"))
    assert "media not deleted at Twilio (" in ours
    for secret in (MEDIA_PATH, "MM" + "1" * 32, fake_twilio.url):
        assert secret not in ours


def test_failed_delete_at_twilio_leaves_the_attachment_stored(
    twilio_app: Flask, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tipline")
    fake_twilio.media[MEDIA_PATH] = (photo("PNG"), "image/png")
    fake_twilio.delete_failures = [500]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "stored"
    assert attachment(twilio_app, att_id)[0].status == "stored"
    assert len(fake_twilio.deletes()) == 1
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tipline"))
    assert "media not deleted at Twilio (http 500)" in ours
    for secret in (MEDIA_PATH, "MM" + "1" * 32, "ME" + "2" * 32, fake_twilio.url):
        assert secret not in ours


def test_a_failed_delete_at_twilio_is_tried_again_until_twilio_forgets_the_media(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.media[MEDIA_PATH] = (photo("PNG"), "image/png")
    fake_twilio.delete_failures = [500, 503]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "stored"  # the first delete fails
    assert source_kept(twilio_app, att_id)  # what it takes to ask again
    with twilio_app.app_context():
        owed: list[str] = []
        sweeper.sweep_once(
            db.session(),
            "test-sweeper",
            utcnow() + timedelta(seconds=10),
            lambda _tip, _code: False,
            lambda att: owed.append(att) or True,
        )
    assert owed == [att_id]  # the sweeper brings the job back
    assert fetch(twilio_app, att_id) == "stored"
    assert len(fake_twilio.deletes()) == 1  # backing off: Twilio is not asked every pass
    later = utcnow() + media.RETRY_FIRST + timedelta(seconds=1)
    assert fetch(twilio_app, att_id, now=later) == "stored"  # the second fails too
    assert len(fake_twilio.deletes()) == 2
    assert fetch(twilio_app, att_id, now=utcnow() + timedelta(hours=1)) == "stored"
    assert [r.path for r in fake_twilio.deletes()] == [MEDIA_PATH] * 3  # the third: forgotten
    assert not source_kept(twilio_app, att_id)
    assert fetch(twilio_app, att_id, now=utcnow() + timedelta(hours=2)) == "stored"
    assert len(fake_twilio.deletes()) == 3  # nothing more to ask
    assert attachment(twilio_app, att_id)[1] is not None  # the stored picture is untouched


def test_twilio_refusing_the_delete_for_a_day_is_an_error_for_the_operator(
    twilio_app: Flask, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tipline")
    fake_twilio.media[MEDIA_PATH] = (photo("PNG"), "image/png")
    fake_twilio.delete_failures = [500, 500]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    assert fetch(twilio_app, att_id) == "stored"
    day_later = utcnow() + media.GIVE_UP_AFTER + timedelta(minutes=1)
    assert fetch(twilio_app, att_id, now=day_later) == "stored"
    assert not source_kept(twilio_app, att_id)  # not kept forever for nothing
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Twilio console" in errors[0].getMessage()
    for secret in (MEDIA_PATH, fake_twilio.url):
        assert secret not in caplog.text


def test_delete_goes_only_to_the_twilio_origin(
    twilio_app: Flask, fake_twilio: FakeTwilio, elsewhere: FakeTwilio
) -> None:
    settings = services(twilio_app).settings
    with pytest.raises(notifier.MediaError, match="origin"):
        notifier.delete_media(settings, elsewhere.url + MEDIA_PATH)
    assert elsewhere.requests == []
    notifier.delete_media(settings, fake_twilio.url + MEDIA_PATH)
    assert [r.path for r in fake_twilio.deletes()] == [MEDIA_PATH]


@pytest.fixture
def elsewhere() -> Iterator[FakeTwilio]:
    fake = start_fake_twilio()
    yield fake
    fake.stop()


# -- retries back off -------------------------------------------------------------------------


def test_twilio_trouble_backs_off_with_growing_waits(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.failures = [503, 503]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    svc = services(twilio_app)

    assert fetch(twilio_app, att_id) == "pending"
    first = media.retry_at(svc, att_id)
    assert first is not None
    assert fetch(twilio_app, att_id) == "pending"  # a sweeper re-run during the wait
    assert fetch(twilio_app, att_id, now=first - timedelta(seconds=1)) == "pending"
    assert len(fake_twilio.requests) == 1  # Twilio was not asked again before the wait ended

    assert fetch(twilio_app, att_id, now=first) == "pending"
    second = media.retry_at(svc, att_id)
    assert second is not None
    assert second - first >= 2 * media.RETRY_FIRST  # the wait grows
    assert len(fake_twilio.requests) == 2

    fake_twilio.media[MEDIA_PATH] = (photo("PNG"), "image/png")
    assert fetch(twilio_app, att_id, now=second) == "stored"
    assert media.retry_at(svc, att_id) is None


def test_worker_schedules_the_retry_instead_of_requeueing_at_once(
    twilio_app: Flask, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.failures = [503]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    run_worker(twilio_app)
    assert attachment(twilio_app, att_id)[0].status == "pending"
    assert len(fake_twilio.requests) == 1
    queue = services(twilio_app).queue(MEDIA_QUEUE)
    assert queue.get_job_ids() == []  # nothing waits to run right away
    [job_id] = queue.scheduled_job_registry.get_job_ids()
    assert job_id.startswith(f"media-{att_id}-")
    due = queue.scheduled_job_registry.get_scheduled_time(job_id)
    retry_at = media.retry_at(services(twilio_app), att_id)
    assert retry_at is not None
    assert retry_at < due <= retry_at + timedelta(seconds=2)


def test_a_final_error_still_fails_at_once(twilio_app: Flask, fake_twilio: FakeTwilio) -> None:
    fake_twilio.failures = [404]
    att_id = send_mms(twilio_app, fake_twilio.url + MEDIA_PATH)
    run_worker(twilio_app)
    assert attachment(twilio_app, att_id)[0].status == "failed"
    assert media.retry_at(services(twilio_app), att_id) is None
    assert services(twilio_app).queue(MEDIA_QUEUE).scheduled_job_registry.count == 0


# -- the stripping itself ---------------------------------------------------------------------


def bomb_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("side", [8000, 10000, 15000])  # over our cap, Pillow's warning, its error
def test_decompression_bombs_are_refused_before_decoding(side: int) -> None:
    with pytest.raises(imageclean.ImageRejected) as refused:
        imageclean.strip(bomb_png(side), "image/png")
    assert refused.value.reason == "size"


def test_animation_keeps_its_frames_and_timing() -> None:
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        comment=COMMENT,
    )
    clean, content_type = imageclean.strip(out.getvalue(), "image/gif")
    assert content_type == "image/gif"
    assert COMMENT not in clean
    with Image.open(io.BytesIO(clean)) as picture:
        timing = []
        for index in range(picture.n_frames):
            picture.seek(index)
            timing.append(picture.info["duration"])
        assert picture.n_frames == 3
        assert timing == [100, 200, 300]


def test_other_types_are_refused_by_the_image_cleaner() -> None:
    with pytest.raises(imageclean.ImageRejected):
        imageclean.strip(b"<svg/>", "image/svg+xml")
    with pytest.raises(imageclean.ImageRejected):
        imageclean.strip(authored_pdf(), "application/pdf")  # pdfclean's, not pixels


def test_pdf_with_more_pages_than_a_tip_needs_is_refused_as_too_large() -> None:
    writer = PdfWriter()
    for _ in range(pdfclean.MAX_PAGES + 1):
        writer.add_blank_page(10, 10)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(pdfclean.PdfRejected) as e:
        pdfclean.strip(out.getvalue())
    assert e.value.reason == "size"


@pytest.mark.parametrize(
    "data",
    [b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20, iphone_heic()[:200]],
    ids=["heic-brand-only", "truncated-heic"],
)
def test_heic_that_does_not_decode_is_refused(data: bytes) -> None:
    with pytest.raises(imageclean.ImageRejected) as refused:
        imageclean.strip(data, "image/heic")
    assert refused.value.reason == "type"


def test_heic_decompression_bomb_is_refused_before_decoding() -> None:
    out = io.BytesIO()
    Image.new("L", (7100, 7100)).save(  # 50.4 megapixels in about 11 kB
        out, format="HEIF", quality=0, enc_params={"preset": "ultrafast"}
    )
    assert len(out.getvalue()) < 64 * 1024
    with pytest.raises(imageclean.ImageRejected) as refused:
        imageclean.strip(out.getvalue(), "image/heic")
    assert refused.value.reason == "size"


def test_heic_keeps_only_the_primary_picture() -> None:
    first, second = Image.new("RGB", (16, 8), (0, 255, 0)), Image.new("RGB", (8, 16), (0, 0, 255))
    out = io.BytesIO()
    first.save(out, format="HEIF", save_all=True, append_images=[second])
    clean, content_type = imageclean.strip(out.getvalue(), "image/heic")
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(clean)) as picture:
        assert (picture.format, picture.size, getattr(picture, "n_frames", 1)) == (
            "JPEG",
            (16, 8),
            1,
        )
        green = picture.convert("RGB").getpixel((8, 4))
    assert isinstance(green, tuple)
    assert green[1] > 200
