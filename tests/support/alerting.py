"""Helpers shared by the alerting tests: tips at a given instant, routing and steps on an
injected clock, sends through the real Notifier (to the fake Twilio, or the console)."""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from tipline.alerting import escalation, fallback, routing
from tipline.db import new_id
from tipline.district.config import load_district
from tipline.district.sync import sync_district
from tipline.extensions import db, dbsession
from tipline.intake.records import create_tip
from tipline.models import Alert, AlertStep, OutboundMessage, School, Tip, Tipster
from tipline.outbox import messages, sending
from tipline.outbox.notifier import Notifier
from tipline.platform.services import services
from tipline.triage import classify

CHICAGO = ZoneInfo("America/Chicago")
RUIZ, CHEN, PATEL, GARCIA = "+15550000111", "+15550000112", "+15550000121", "+15550000131"
LINCOLN, WASHINGTON = "+15550000100", "+15550000200"
STUDENT = "+15551230001"
GUN = "Jake has a gun in his backpack in the parking lot"


def chicago(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHICAGO).astimezone(UTC)


WEDNESDAY_10AM = chicago(2026, 3, 4, 10)  # ruiz (SRO) and garcia (counselor) on duty


def add_tip(
    app: Flask,
    text: str,
    now: datetime,
    school: str = "lincoln",
    source: str = "sms",
    phone: str | None = STUDENT,
) -> str:
    """Store a tip as intake would (sealed, triaged, marked for routing); its id."""
    with app.app_context():
        session = dbsession()
        svc = services(app)
        found = session.scalars(select(School).where(School.slug == school)).one()
        tipster = None
        if source == "sms" and phone:
            tipster = Tipster(id=new_id(), kind="sms", data_key=svc.vault.new_data_key())
            tipster.phone_hash = svc.vault.lookup_hash(session, "phone", phone + tipster.id)
            svc.vault.put(tipster, "phone", phone)
            session.add(tipster)
            session.flush()
        tip = create_tip(
            session,
            svc.vault,
            school=found,
            text=text,
            source=source,
            verdict=classify(text, rules=svc.rules(session)),
            tipster=tipster,
            now=now,
        )
        session.commit()
        return tip.id


def route(app: Flask, tip_id: str, now: datetime) -> routing.Routed | None:
    """What the routing job does, on an injected clock: route and run the first step."""
    with app.app_context():
        session = dbsession()
        svc = services(app)
        return routing.route_tip(
            session,
            svc.vault,
            svc.rules(session),
            tip_id,
            now,
            public_url=svc.settings.public_url,
        )


def run_due(app: Flask, now: datetime) -> int:
    """Run every due step, as the sweeper does; how many ran."""
    ran = 0
    with app.app_context():
        session = dbsession()
        svc = services(app)
        for alert_id, token in escalation.due(session, now, timedelta(0)):
            run = escalation.run_step(
                session, svc.vault, alert_id, token, now, public_url=svc.settings.public_url
            )
            ran += run.executed
    return ran


@dataclass
class Sender:
    """The real Notifier (fake Twilio or console) and a way to send everything owed."""

    app: Flask
    notifier: Notifier
    console: io.StringIO

    def send_owed(self, now: datetime) -> list[str]:
        kinds = []
        with self.app.app_context():
            session = dbsession()
            svc = services(self.app)
            for outbound_id, _attempts in messages.owed(session, now, timedelta(0)):
                outcome = sending.deliver(
                    session,
                    svc.vault,
                    self.notifier,
                    outbound_id,
                    now,
                    svc.settings.public_url,
                    fall_back=fallback.fall_back,
                )
                kinds.append(outcome.kind)
        return kinds


def sender_for(app: Flask, timeout: float = 5.0) -> Sender:
    out = io.StringIO()
    return Sender(app, Notifier(services(app).settings, out=out, timeout=timeout), out)


def outbound(app: Flask, **where: Any) -> list[OutboundMessage]:
    with app.app_context():
        stmt = select(OutboundMessage).order_by(OutboundMessage.created_at, OutboundMessage.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(OutboundMessage, name) == value)
        found = list(db.session.scalars(stmt))
        db.session.expunge_all()
        return found


def the_alert(app: Flask, tip_id: str | None = None) -> Alert:
    with app.app_context():
        stmt = select(Alert).order_by(Alert.created_at.desc())
        if tip_id:
            stmt = stmt.where(Alert.tip_id == tip_id)
        alert = db.session.scalars(stmt).first()
        assert alert is not None
        db.session.expunge_all()
        return alert


def steps(app: Flask) -> list[tuple[int, int, list[str]]]:
    with app.app_context():
        rows = db.session.scalars(select(AlertStep).order_by(AlertStep.id)).all()
        return [(r.round, r.step, list(r.recipients)) for r in rows]


def tip_code(app: Flask, tip_id: str) -> str:
    with app.app_context():
        tip = db.session.get(Tip, tip_id)
        assert tip is not None
        return tip.code


def use_config(app: Flask, tmp_path: Path, policies: str) -> Path:
    """The example district with its policies replaced by `policies` (TOML), synced."""
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    head = example.read_text().split("# --- escalation policies")[0]
    path = tmp_path / "district.toml"
    path.write_text(head + textwrap.dedent(policies))
    with app.app_context():
        sync_district(dbsession(), load_district(path))
        db.session.commit()
    return path
