"""Staff logins managed from the admin view: admins create, disable and re-enable the logins
of their schools and reset their second factor; district staff do so for every login.

A login is an admin's to manage when all its schools are the admin's (`accounts.may_reset`):
an admin of one school never touches a login that also works elsewhere, nor a district login.
A new login gets a random first password, shown once to whoever created it, and enrolls its
second factor at its first sign-in. The web never updates an existing login in place (that is
`tipline create-user`'s job): "creating" a colleague's email would otherwise reset their
password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipline.models import Staff, User
from tipline.staff import accounts, sessions
from tipline.staff.access import actor, visible_schools
from tipline.vault import audit
from tipline.vault.keyring import Vault

MANAGER_ROLES = ("admin", "district")
SCHOOL_ROLES = ("admin", "sro", "counselor")  # what a school's admin may create


class LoginError(accounts.AccountError):
    """The login cannot be created or changed as asked; the message says why."""


def may_manage(user: User) -> bool:
    return user.active and user.role in MANAGER_ROLES


@dataclass(frozen=True)
class LoginRow:
    id: int
    email: str
    role: str
    schools: list[str]
    staff: str | None
    active: bool
    enrolled: bool
    is_self: bool


def manageable(session: Session, manager: User) -> list[LoginRow]:
    """The logins this manager may manage, by email."""
    found = []
    for user in session.scalars(select(User).order_by(User.email)):
        if user.id != manager.id and not accounts.may_reset(manager, user):
            continue
        found.append(
            LoginRow(
                id=user.id,
                email=user.email,
                role=user.role,
                schools=sorted(s.slug for s in user.schools),
                staff=user.staff.name if user.staff else None,
                active=user.active,
                enrolled=accounts.has_second_factor(user),
                is_self=user.id == manager.id,
            )
        )
    return found


def roles_for(manager: User) -> tuple[str, ...]:
    return accounts.ROLES if manager.role == "district" else SCHOOL_ROLES


def staff_choices(session: Session, manager: User) -> list[Staff]:
    """Roster entries a new login may be linked to: staff of the manager's schools."""
    mine = {s.id for s in visible_schools(session, manager)}
    staff = session.scalars(select(Staff).where(Staff.active).order_by(Staff.name))
    return [s for s in staff if any(school.id in mine for school in s.schools)]


def create(
    session: Session,
    vault: Vault,
    manager: User,
    *,
    email: str,
    role: str,
    schools: list[str],
    staff_key: str | None,
) -> tuple[User, str]:
    """A new login and its first password (shown once). Audited. The caller commits."""
    if not may_manage(manager):
        raise LoginError("only admins and district staff create logins")
    if role not in roles_for(manager):
        raise LoginError(f"the role must be one of {', '.join(roles_for(manager))}")
    mine = {s.slug for s in visible_schools(session, manager)}
    schools = sorted(set(schools))
    if role != "district" and not schools:
        raise LoginError("choose at least one school")
    if any(slug not in mine for slug in schools):
        raise LoginError("a login can only be given your own schools")
    cleaned = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == cleaned)) is not None:
        raise LoginError("a login with that email exists already")
    if staff_key:
        member = session.scalars(select(Staff).where(Staff.key == staff_key)).first()
        if member is None or member not in staff_choices(session, manager):
            raise LoginError("no such staff entry at your schools")
    password = secrets.token_urlsafe(12)  # 16 characters, 96 bits
    user, _ = accounts.upsert_user(
        session,
        vault,
        email=cleaned,
        role=role,
        password=password,
        schools=schools,
        staff_key=staff_key or None,
    )
    audit.record(
        session,
        actor(manager),
        "login.created",
        None,
        user=user.id,
        role=role,
        schools=schools,
        staff=staff_key or None,
    )
    return user, password


def _target(session: Session, manager: User, user_id: int) -> User:
    target = session.get(User, user_id)
    if (
        target is None
        or target.id == manager.id
        or not may_manage(manager)
        or not accounts.may_reset(manager, target)
    ):
        raise LoginError("no such login at your schools")
    return target


def set_active(session: Session, manager: User, user_id: int, active: bool, now: datetime) -> User:
    """Disable a login (its sessions end at once) or enable it again. Audited."""
    target = _target(session, manager, user_id)
    target.active = active
    ended = 0 if active else sessions.revoke_all(session, target.id, now)
    action = "login.enabled" if active else "login.disabled"
    audit.record(session, actor(manager), action, None, user=target.id, sessions_ended=ended)
    return target


def reset_second_factor(session: Session, vault: Vault, manager: User, user_id: int) -> User:
    """`accounts.reset_second_factor` for a login this manager manages. Audited."""
    target = _target(session, manager, user_id)
    accounts.reset_second_factor(session, vault, target, actor(manager))
    return target
