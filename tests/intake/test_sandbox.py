"""The sandbox: hostile files are decoded in a limited child process, off the request and off the
pager's worker, and what it refuses is shredded.

The attacks: a small PNG that declares 30000x30000 pixels (a decompression bomb), a PDF that
runs JavaScript when opened, a file that needs more memory or CPU than a check may take. None
may stall intake, delay a page, take a worker down, or reach staff.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from datetime import timedelta

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select

from tests.conftest import ACCOUNT_SID, post_signed, sms_params
from tests.intake.test_pdf_active_content import MARKERS, armed_pdf
from tests.support.admin import AuthActions
from tests.support.fakes import FakeTwilio
from tests.support.media import (
    attachment_state,
    run_media_worker,
    send_mms,
)
from tests.support.web import post_tip
from tipline.db import utcnow
from tipline.extensions import db
from tipline.intake import media, sandbox
from tipline.models import Attachment, AuditEvent, DataKey, Tip
from tipline.platform.services import MEDIA_QUEUE, PAGER_QUEUES, services
from workers.allowlist import JobWorker
from workers.jobs import SANDBOX_LIMITS
from workers.runner import dispatch_pending

MiB = 1024 * 1024
BOMB_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM{'3' * 32}/Media/ME{'4' * 32}"


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a few bytes of pixels: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width * 3 + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def gradient_png(side: int) -> bytes:
    """A real, valid picture of side x side pixels in a small file (it compresses well)."""
    out = io.BytesIO()
    Image.linear_gradient("L").resize((side, side)).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 128, 255)).save(out, format="PNG")
    return out.getvalue()


def only_attachment(app: Flask) -> Attachment:
    with app.app_context():
        att = db.session.scalars(select(Attachment)).one()
        db.session.expunge(att)
        return att


def rejected_reason(app: Flask, att_id: str) -> str:
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "attachment.rejected")
        ).all()
        return next(str(e.detail["reason"]) for e in events if e.detail["attachment_id"] == att_id)


# -- the case: intake answers while the sandbox works ----------------------------------


@pytest.fixture
def media_worker_env(twilio_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **twilio_env}


def test_bomb_and_armed_pdf_are_handled_without_stalling_intake(
    twilio_app: Flask, fake_twilio: FakeTwilio, media_worker_env: dict[str, str]
) -> None:
    bomb = declared_png(30000, 30000)  # 900 megapixels declared
    assert len(bomb) < 16 * 1024
    fake_twilio.media[BOMB_PATH] = (bomb, "image/png")
    bomb_id = send_mms(twilio_app, fake_twilio.url + BOMB_PATH, body="look at this gun pic")
    student = twilio_app.test_client()
    resp = post_tip(student, "see attached", attachment=(armed_pdf(), "a.pdf", "application/pdf"))
    assert resp.status_code == 200
    with twilio_app.app_context():
        pdf_id = db.session.scalars(select(Attachment.id).where(Attachment.id != bomb_id)).one()
    assert attachment_state(twilio_app, pdf_id) == "checking"

    # The tips themselves do not wait for their files: the pager's queues run dry first.
    svc = services(twilio_app)
    dispatch_pending(svc)  # the hand-offs into routing jobs, as the worker's dispatcher does
    with twilio_app.app_context():
        JobWorker([svc.queue(n) for n in PAGER_QUEUES], connection=svc.redis).work(burst=True)
        assert all(t.routed_at is not None for t in db.session.scalars(select(Tip)))
    assert attachment_state(twilio_app, bomb_id) == "pending"

    client = twilio_app.test_client()
    post_signed(client, "/sms/inbound", sms_params("warm up", from_="+15551239999"))
    started = svc.queue(MEDIA_QUEUE).started_job_registry
    worker = subprocess.Popen(
        [sys.executable, "-m", "tipline", "worker", "--media", "only", "--burst"],
        env=media_worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    answered: list[float] = []  # webhook times while a media job was running
    try:
        n = 0
        while worker.poll() is None:
            n += 1
            busy = started.count > 0
            t0 = time.perf_counter()
            resp = post_signed(
                client,
                "/sms/inbound",
                sms_params(f"fight at the gym {n}", from_=f"+1555200{n:04d}"),
            )
            elapsed = time.perf_counter() - t0
            assert resp.status_code == 200
            if busy and started.count > 0:
                answered.append(elapsed)
            time.sleep(0.02)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
    assert worker.returncode == 0
    assert len(answered) >= 3, "the media worker finished before intake could be measured"
    assert max(answered) < 0.150, answered  # the bound, while the sandbox works

    assert attachment_state(twilio_app, bomb_id) == "rejected"
    assert rejected_reason(twilio_app, bomb_id) == "size"
    assert attachment_state(twilio_app, pdf_id) == "stored"
    with twilio_app.app_context():
        att = db.session.get(Attachment, pdf_id)
        assert att is not None
        content = svc.vault.get_bytes(att, "content")
    assert content is not None
    for marker in MARKERS.values():
        assert marker.encode() not in content, marker
    assert b"/OpenAction" not in content
    assert b"/JavaScript" not in content


# -- the limits hold, and the worker survives them ---------------------------------------------


def test_a_check_that_needs_more_memory_than_allowed_is_refused_and_the_worker_goes_on(
    app: Flask,
) -> None:
    app.config[SANDBOX_LIMITS] = sandbox.Limits(memory=160 * MiB, wall=120)  # a busy machine
    big = gradient_png(7000)  # 49 megapixels: allowed, but 147 MB decoded, twice while turned
    student = app.test_client()
    for upload in ((big, "big.png", "image/png"), (small_png(), "small.png", "image/png")):
        assert post_tip(student, "see attached", attachment=upload).status_code == 200
    with app.app_context():
        big_id, small_id = db.session.scalars(
            select(Attachment.id).order_by(Attachment.created_at, Attachment.size.desc())
        ).all()
    run_media_worker(app)  # one worker takes both jobs, one after the other
    assert attachment_state(app, big_id) == "rejected"
    assert rejected_reason(app, big_id) == "memory"
    assert attachment_state(app, small_id) == "stored"  # the same worker, still working
    with app.app_context():
        refused = db.session.get(Attachment, big_id)
        assert refused is not None
        assert (refused._content, refused.data_key_id) == (None, None)  # shredded
        assert services(app).queue(MEDIA_QUEUE).failed_job_registry.count == 0


def test_a_check_that_needs_more_cpu_than_allowed_is_killed() -> None:
    with pytest.raises(sandbox.Refused) as refused:
        sandbox.clean(gradient_png(7000), sandbox.Limits(cpu=1, wall=60))
    assert refused.value.reason == "cpu"


def test_a_check_past_its_wall_clock_limit_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(sandbox.Refused) as refused:
        sandbox.clean(small_png(), sandbox.Limits(wall=0.05))
    assert refused.value.reason == "timeout"
    assert time.monotonic() - started < 5  # killed, not waited for


def test_the_sandbox_gets_no_secrets_and_writes_json_log_lines() -> None:
    env = sandbox._child_env()
    assert not [k for k in env if k.startswith(("TIPLINE_", "TWILIO_"))]
    done = subprocess.run(
        [sys.executable, "-B", "-m", sandbox.MODULE, str(512 * MiB), "10"],
        input=declared_png(30000, 30000),
        capture_output=True,
        env={**env, "TIPLINE_MASTER_KEYS": "must-not-matter"},
        timeout=60,
        check=True,
    )
    header, _, body = done.stdout.partition(b"\n")
    assert json.loads(header) == {"ok": False, "reason": "size"}
    assert body == b""
    lines = done.stderr.decode().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record)


# -- what staff see -------------------------------------------------------------------------------


def test_staff_see_being_checked_then_the_refusal_and_cannot_download_the_raw_upload(
    app: Flask, auth: AuthActions
) -> None:
    auth.login_as("admin")
    student = app.test_client()
    bomb = declared_png(30000, 30000)
    assert (
        post_tip(student, "see attached", attachment=(bomb, "x.png", "image/png")).status_code
        == 200
    )
    att = only_attachment(app)
    page = auth.client.get(f"/admin/tips/{att.tip_id}").get_data(as_text=True)
    assert "being checked" in page
    assert auth.client.get(f"/admin/tips/{att.tip_id}/attachments/{att.id}").status_code == 404
    run_media_worker(app)
    page = auth.client.get(f"/admin/tips/{att.tip_id}").get_data(as_text=True)
    assert "refused: too large" in page
    assert auth.client.get(f"/admin/tips/{att.tip_id}/attachments/{att.id}").status_code == 404


def test_a_clean_upload_is_sealed_under_a_new_key_and_the_raw_one_is_shredded(
    app: Flask,
) -> None:
    student = app.test_client()
    upload = (small_png(), "s.png", "image/png")
    assert post_tip(student, "see attached", attachment=upload).status_code == 200
    raw_key = only_attachment(app).data_key_id
    run_media_worker(app)
    att = only_attachment(app)
    assert att.status == "stored"
    assert att.data_key_id not in (None, raw_key)
    with app.app_context():
        assert db.session.get(DataKey, raw_key) is None


# -- a busy machine is not the file's fault ------------------------------------------------------


def _upload_that_times_out(app: Flask) -> str:
    app.config[SANDBOX_LIMITS] = sandbox.Limits(wall=0.05)  # a machine too busy to check in time
    upload = (small_png(), "a.png", "image/png")
    assert post_tip(app.test_client(), "see attached", attachment=upload).status_code == 200
    att_id = only_attachment(app).id
    run_media_worker(app)
    assert attachment_state(app, att_id) == "checking"  # kept for another try, not refused
    return att_id


def test_a_file_the_sandbox_ran_out_of_time_on_is_checked_again_later(app: Flask) -> None:
    att_id = _upload_that_times_out(app)
    later = utcnow() + media.RETRY_FIRST + timedelta(seconds=1)
    with app.app_context():
        svc = services(app)
        assert media.retry_at(svc, att_id) is not None  # the job schedules itself for then
        assert media.process(db.session, svc, att_id, now=utcnow()) == "pending"  # too early
        stored = media.process(db.session, svc, att_id, now=later, limits=sandbox.Limits())
        assert stored == "stored"
    assert attachment_state(app, att_id) == "stored"


def test_a_file_that_times_out_every_time_is_refused_after_its_second_try(app: Flask) -> None:
    att_id = _upload_that_times_out(app)
    later = utcnow() + media.RETRY_FIRST + timedelta(seconds=1)
    with app.app_context():
        svc = services(app)
        slow = sandbox.Limits(wall=0.05)
        assert media.process(db.session, svc, att_id, now=later, limits=slow) == "rejected"
    assert attachment_state(app, att_id) == "rejected"
    assert rejected_reason(app, att_id) == "timeout"
