"""`tipline oncall [SCHOOL] [--at TIME]` and `tipline oncall set SCHOOL DUTY STAFF ...`."""

from __future__ import annotations

import getpass
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.cli.assemble import app_context
from tipline.db import utcnow
from tipline.district import cache, cover
from tipline.district.config import ROLES
from tipline.district.oncall import describe_on_duty
from tipline.extensions import dbsession
from tipline.models import School


class _SchoolOrCommand(click.Group):
    """`oncall lincoln` names a school; `oncall set ...` runs the subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            ctx.meta["oncall.school"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)


def _when(raw: str | None, timezone: str) -> datetime:
    """An ISO time; one without an offset is read in the school's time zone."""

    if raw is None:
        return utcnow()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise click.BadParameter(f"{raw!r} is not an ISO time like 2026-03-09T06:30") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(timezone))


@click.group("oncall", cls=_SchoolOrCommand, invoke_without_command=True)
@click.option("--at", "at", default=None, metavar="TIME", help="ISO time (default: now)")
@click.pass_context
def oncall(ctx: click.Context, at: str | None) -> None:
    """Who is on duty at SCHOOL (or at every school) and why: shift or override."""
    if ctx.invoked_subcommand is not None:
        return

    slug = ctx.meta.get("oncall.school")
    with app_context():
        session = dbsession()
        district = cache.current_district(session)
        schools = [s for s in district.schools if slug is None or s.slug == slug]
        if not schools:
            raise click.BadParameter(f"unknown school {slug!r}", param_hint="SCHOOL")
        blocks = []
        for school in schools:
            when = _when(at, school.timezone)
            school_id = _school_id(session, school.slug)
            overrides = cache.overrides_at(session, school_id, when)
            blocks.append(describe_on_duty(district, school.slug, when, overrides))
    click.echo("\n\n".join(blocks))


def _school_id(session: Session, slug: str) -> int:

    found = session.scalar(select(School.id).where(School.slug == slug, School.active))
    if found is None:
        raise click.BadParameter(f"unknown school {slug!r}", param_hint="SCHOOL")
    return int(found)


@oncall.command("set")
@click.argument("school")
@click.argument("duty", type=click.Choice(ROLES))
@click.argument("staff")
@click.option("--from", "start", required=True, metavar="ISO", help="start (school's time)")
@click.option("--until", "end", required=True, metavar="ISO", help="end, exclusive")
@click.option("--by", "created_by", default=None, help="who set it (default: this user)")
def set_override(
    school: str, duty: str, staff: str, start: str, end: str, created_by: str | None
) -> None:
    """STAFF covers DUTY at SCHOOL from --from until --until, ahead of the shifts."""

    with app_context():
        session = dbsession()
        found = session.scalars(select(School).where(School.slug == school, School.active)).first()
        if found is None:
            raise click.BadParameter(f"unknown school {school!r}", param_hint="SCHOOL")
        begins, ends = _when(start, found.timezone), _when(end, found.timezone)
        who = created_by or f"cli:{getpass.getuser()}"
        try:
            row = cover.add_override(
                session,
                school=school,
                duty=duty,
                staff=staff,
                start=begins,
                end=ends,
                created_by=who,
            )
        except cover.CoverError as exc:
            raise click.BadParameter(str(exc)) from None
        member = row.staff
        session.commit()
        zone = ZoneInfo(found.timezone)
        click.echo(
            f"{member.name} ({staff}) covers {duty} at {found.name} from "
            f"{begins.astimezone(zone):%a %Y-%m-%d %H:%M %Z} until "
            f"{ends.astimezone(zone):%a %Y-%m-%d %H:%M %Z}"
        )
