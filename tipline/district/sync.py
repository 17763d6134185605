"""Sync the district configuration into the database, in place (`tipline init`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tipline.district.config import (
    DistrictConfig,
    FloodConfig,
    PolicyConfig,
    RetentionConfig,
    parse_district,
)
from tipline.district.grants import ACCESS_SETTING
from tipline.models import TRIAGE_SETTING, Policy, School, Setting, Shift, Staff


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"created {x}" for x in self.created] + [f"updated {x}" for x in self.updated]
        return out + [f"deactivated {x} (no longer in the config)" for x in self.deactivated]


def _flood_of(school: School) -> dict[str, Any]:
    """The school's flood thresholds as the config file writes them."""
    found = FloodConfig.from_row(school.flood)
    return {
        "web_sessions": found.web_sessions,
        "tips": found.tips,
        **{
            name: f"{int(getattr(found, name).total_seconds())}s"
            for name in ("window", "quiet", "digest")
        },
    }


def policy_steps(policy: PolicyConfig) -> list[dict[str, Any]]:
    return [
        {
            "notify": list(s.notify),
            "channels": list(s.channels),
            "wait": int(s.wait.total_seconds()),
        }
        for s in policy.steps
    ]


def sync_district(  # noqa: PLR0912 - schools, staff, shifts, policies in one pass
    session: Session, district: DistrictConfig
) -> SyncReport:
    """Create or update schools, staff, shifts and policies; missing ones are deactivated/removed.

    Schools and staff are never deleted (tips and audit events refer to them); shifts and
    policies are replaced, since nothing refers to them by id.
    """
    report = SyncReport()
    schools = {s.slug: s for s in session.scalars(select(School))}
    for cfg in district.schools:
        row = schools.get(cfg.slug)
        if row is None:
            row = schools[cfg.slug] = School(slug=cfg.slug)
            session.add(row)
            report.created.append(f"school {cfg.slug}")
        elif (
            not row.active
            or row.name != cfg.name
            or row.sms_number != cfg.sms_number
            or _retention_of(row) != cfg.retention
            or row.break_glass != cfg.break_glass
            or FloodConfig.from_row(row.flood) != cfg.flood
        ):
            report.updated.append(f"school {cfg.slug}")
        row.name, row.timezone, row.sms_number = cfg.name, cfg.timezone, cfg.sms_number
        row.fallback, row.monitored = list(cfg.fallback), cfg.monitored
        row.followup_window_s = int(cfg.followup_window.total_seconds())
        row.alert_text, row.active = cfg.alert_text, True
        row.places, row.break_glass = list(cfg.places), cfg.break_glass
        row.flood = cfg.flood.as_row()
        kept = cfg.retention
        row.retention_closed_days, row.retention_phone_days, row.retention_attachment_days = (
            kept.closed_days,
            kept.phone_days,
            kept.attachment_days,
        )
    for slug, row in schools.items():
        if row.active and district.school(slug) is None:
            row.active = False
            report.deactivated.append(f"school {slug}")
    session.flush()

    staff = {s.key: s for s in session.scalars(select(Staff))}
    # Free phone numbers first, so two people can swap phones in one sync.
    for member in staff.values():
        cfg_staff = district.staff_member(member.key)
        if cfg_staff is None or cfg_staff.phone != member.phone:
            member.phone = None
    session.flush()
    for cfg_s in district.staff:
        srow = staff.get(cfg_s.id)
        if srow is None:
            srow = staff[cfg_s.id] = Staff(key=cfg_s.id)
            session.add(srow)
            report.created.append(f"staff {cfg_s.id}")
        srow.name, srow.role, srow.phone, srow.email = (
            cfg_s.name,
            cfg_s.role,
            cfg_s.phone,
            cfg_s.email,
        )
        srow.active = True
        srow.schools = [schools[slug] for slug in cfg_s.schools]
    for key, srow in staff.items():
        if srow.active and district.staff_member(key) is None:
            srow.active = False
            srow.schools = []
            report.deactivated.append(f"staff {key}")
    session.flush()

    session.execute(delete(Shift))
    for i, sh in enumerate(district.shifts):
        session.add(
            Shift(
                position=i,
                school_id=schools[sh.school].id,
                staff_id=staff[sh.staff].id,
                duty=sh.duty,
                days=list(sh.days),
                start=sh.start.strftime("%H:%M"),
                end=sh.end.strftime("%H:%M"),
            )
        )
    session.execute(delete(Policy))
    session.flush()
    for i, p in enumerate(district.policies):
        session.add(
            Policy(
                position=i,
                name=p.name,
                severities=list(p.severity),
                categories=list(p.categories),
                schools=list(p.schools),
                repeat=p.repeat,
                steps=policy_steps(p),
            )
        )
    _put_setting(session, TRIAGE_SETTING, dict(district.triage))
    _put_setting(session, ACCESS_SETTING, [rule.as_dict() for rule in district.access])
    session.flush()
    return report


def _retention_of(row: School) -> RetentionConfig:
    return RetentionConfig(
        row.retention_closed_days, row.retention_phone_days, row.retention_attachment_days
    )


def _put_setting(session: Session, name: str, value: Any) -> None:
    setting = session.get(Setting, name)
    if setting is None:
        session.add(Setting(name=name, value=value))
    else:
        setting.value = value


def district_from_db(session: Session) -> DistrictConfig:
    """Rebuild the district config from the database, the source of truth after `tipline init`.

    The `[triage]` setting stays out: the app's rules come from `Services.rules`, and compiling
    them again here would cost time for a copy nobody reads.
    """

    schools = session.scalars(select(School).where(School.active).order_by(School.id)).all()
    staff = session.scalars(select(Staff).where(Staff.active).order_by(Staff.id)).all()
    by_id = {s.id: s for s in staff}
    slug_of = {s.id: s.slug for s in schools}
    doc: dict[str, Any] = {
        "school": [
            {
                "slug": s.slug,
                "name": s.name,
                "timezone": s.timezone,
                "sms_number": s.sms_number,
                "fallback": list(s.fallback),
                "followup_window": f"{s.followup_window_s}s",
                "alert_text": s.alert_text,
                "places": list(s.places or ()),
                "retention": asdict(_retention_of(s)),
                "break_glass": s.break_glass,
                "flood": _flood_of(s),
                **({"monitored": s.monitored} if s.monitored else {}),
            }
            for s in schools
        ],
        "staff": [
            {
                "id": s.key,
                "name": s.name,
                "role": s.role,
                "schools": [sc.slug for sc in s.schools if sc.id in slug_of],
                **({"phone": s.phone} if s.phone else {}),
                **({"email": s.email} if s.email else {}),
            }
            for s in staff
        ],
        "shift": [
            {
                "school": slug_of[sh.school_id],
                "staff": by_id[sh.staff_id].key,
                "duty": sh.duty,
                "days": list(sh.days),
                "start": sh.start,
                "end": sh.end,
            }
            for sh in session.scalars(select(Shift).order_by(Shift.position))
            if sh.school_id in slug_of and sh.staff_id in by_id
        ],
        "policy": [
            {
                "name": p.name,
                "severity": list(p.severities),
                "categories": list(p.categories),
                "schools": list(p.schools),
                "repeat": p.repeat,
                "step": [
                    {"notify": st["notify"], "channels": st["channels"], "wait": f"{st['wait']}s"}
                    for st in p.steps
                ],
            }
            for p in session.scalars(select(Policy).order_by(Policy.position))
        ],
    }
    return parse_district(doc, "database")
