"""Data keys at rest: place binding, rotation to a new master key, crypto-shredding."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import delete, func, select, update

from tests.conftest import TEST_KEY_1, TEST_KEY_2
from tests.support.admin import make_tip as stored_tip
from tipline.cli import main
from tipline.cli.assemble import build_app
from tipline.db import utcnow
from tipline.extensions import db, dbsession
from tipline.intake import records
from tipline.models import DataKey, Tip, Tipster
from tipline.platform.services import services
from tipline.vault.crypto import CryptoError
from tipline.vault.retention import apply_retention

PHONE = "+15551230077"


def make_tip(app: Flask, text: str, phone: str | None = None) -> str:
    """A tip stored the way intake does, and a follow-up: two sealed texts under its data key."""
    tip_id = stored_tip(app, text, phone=phone)
    with app.app_context():
        tip = dbsession().get(Tip, tip_id)
        assert tip is not None
        records.add_message(
            dbsession(),
            services(app).vault,
            tip,
            direction="in",
            channel=tip.source,
            text=text + " (follow-up)",
            now=utcnow(),
        )
        dbsession().commit()
    return tip_id


def read_back(app: Flask, tip_id: str) -> tuple[str, list[str], str | None]:
    with app.app_context():
        session, vault = dbsession(), services(app).vault
        tip = session.get(Tip, tip_id)
        assert tip is not None
        texts = [e.text for e in records.conversation(session, vault, tip)]
        by_hash = session.scalars(
            select(Tipster).where(Tipster.phone_hash == vault.lookup_hash(session, "phone", PHONE))
        ).first()
        phone = vault.get_text(by_hash, "phone") if by_hash else None
        return records.tip_text(vault, tip), texts, phone


def test_a_ciphertext_swapped_between_two_rows_fails(app: Flask) -> None:
    a = make_tip(app, "fight planned behind the gym friday")
    b = make_tip(app, "someone is selling vapes in the bathroom")
    with app.app_context():
        tip_a, tip_b = db.session.get(Tip, a), db.session.get(Tip, b)
        assert tip_a is not None
        assert tip_b is not None
        body_a, body_b = tip_a._body, tip_b._body
        db.session.execute(update(Tip).where(Tip.id == a).values(_body=body_b))
        db.session.execute(update(Tip).where(Tip.id == b).values(_body=body_a))
        # Even with the same data key, the associated data names the row.
        db.session.execute(update(Tip).where(Tip.id == b).values(data_key_id=tip_a.data_key_id))
        db.session.commit()
        db.session.expire_all()
    for tip_id in (a, b):
        with app.app_context():
            tip = db.session.get(Tip, tip_id)
            assert tip is not None
            with pytest.raises(CryptoError):
                records.tip_text(services(app).vault, tip)


def test_rotate_then_drop_the_old_master_key_and_everything_still_reads(
    app: Flask, env: dict[str, str]
) -> None:
    tip_id = make_tip(app, "he said he'd bring a gun tomorrow", phone=PHONE)
    original = read_back(app, tip_id)
    assert original[0] == "he said he'd bring a gun tomorrow"
    assert original[2] == PHONE

    only_new = build_app({**env, "TIPLINE_MASTER_KEYS": TEST_KEY_2})
    with pytest.raises(CryptoError):
        read_back(only_new, tip_id)

    result = CliRunner().invoke(
        main,
        ["rotate-key"],
        env={**env, "TIPLINE_MASTER_KEYS": f"{TEST_KEY_2},{TEST_KEY_1}"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "re-wrapped" in result.output
    with app.app_context():
        remaining = db.session.scalars(select(DataKey.master_key_id).distinct()).all()
        assert remaining == ["test2"]

    after = build_app({**env, "TIPLINE_MASTER_KEYS": TEST_KEY_2})
    assert read_back(after, tip_id) == original
    # The phone lookup (read_back) still finds the sender; new records use the new key.
    second = make_tip(after, "it is happening at lunch")
    with after.app_context():
        tip = db.session.get(Tip, second)
        assert tip is not None
        assert tip.data_key is not None
        assert tip.data_key.master_key_id == "test2"
    for engine_app in (only_new, after):
        with engine_app.app_context():
            db.engine.dispose()


def test_deleting_a_data_key_shreds_its_record(app: Flask) -> None:
    tip_id = make_tip(app, "my stepdad hits me")
    with app.app_context():
        tip = db.session.get(Tip, tip_id)
        assert tip is not None
        db.session.execute(delete(DataKey).where(DataKey.id == tip.data_key_id))
        db.session.commit()
        db.session.expire_all()
        tip = db.session.get(Tip, tip_id)
        assert tip is not None
        assert tip._body is not None
        with pytest.raises(CryptoError, match="shredded"):
            records.tip_text(services(app).vault, tip)


def test_purge_shreds_closed_tips_past_retention(app: Flask) -> None:
    old = make_tip(app, "old closed report about graffiti")
    fresh = make_tip(app, "new report about graffiti")
    with app.app_context():
        db.session.execute(update(Tip).where(Tip.id.in_([old, fresh])).values(status="closed"))
        db.session.execute(
            update(Tip).where(Tip.id == old).values(last_activity_at=utcnow() - timedelta(days=400))
        )
        db.session.commit()
        result = apply_retention(dbsession())
        db.session.commit()
        assert result.shredded_tips == 1
        vault = services(app).vault
        gone = db.session.get(Tip, old)
        kept = db.session.get(Tip, fresh)
        assert gone is not None
        assert kept is not None
        assert gone.data_key is None  # the key is gone, and the ciphertext with it
        assert gone._body is None
        assert records.tip_text(vault, kept) == "new report about graffiti"


def test_rotation_in_small_batches_rewraps_every_key_once(app: Flask, env: dict[str, str]) -> None:
    tips = [
        make_tip(app, f"tip number {n} about a fight", phone=f"+1555123{n:04d}") for n in range(4)
    ]
    with app.app_context():
        keys = db.session.scalar(select(func.count()).select_from(DataKey))
    rotated = build_app({**env, "TIPLINE_MASTER_KEYS": f"{TEST_KEY_2},{TEST_KEY_1}"})
    with rotated.app_context():
        vault = services(rotated).vault
        assert vault.rotate(dbsession(), batch=3) == keys + 1  # every data key, and the lookup key
        dbsession().commit()
        assert vault.rotate(dbsession(), batch=3) == 0  # nothing left under the old key
        db.engine.dispose()
    after = build_app({**env, "TIPLINE_MASTER_KEYS": TEST_KEY_2})
    for n, tip_id in enumerate(tips):
        with after.app_context():
            tip = db.session.get(Tip, tip_id)
            assert tip is not None
            assert records.tip_text(services(after).vault, tip) == f"tip number {n} about a fight"
    with after.app_context():
        db.engine.dispose()
