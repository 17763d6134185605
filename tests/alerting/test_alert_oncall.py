"""`tipline oncall`: who is on duty and why; overrides set from the command line page."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask

from tests.support.alerting import GUN, add_tip, chicago, route, steps
from tipline.cli.oncall_cmd import oncall


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(oncall, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_oncall_prints_who_is_on_duty_and_why(app: Flask, env: dict[str, str]) -> None:
    code, out = run(env, "lincoln", "--at", "2026-03-09T06:30")
    assert code == 0, out
    assert "Lincoln High School (lincoln) at Mon 2026-03-09 06:30 CDT" in out
    assert "sro" in out
    assert "Officer Marcus Chen (chen) — shift sun 16:00-07:00" in out


def test_oncall_without_a_school_lists_every_school(app: Flask, env: dict[str, str]) -> None:
    code, out = run(env, "--at", "2026-03-04T10:00")
    assert code == 0
    assert "(lincoln)" in out
    assert "(washington)" in out
    assert "Dana Ruiz" in out


def test_override_set_from_the_cli_pages_the_cover(app: Flask, env: dict[str, str]) -> None:
    code, out = run(
        env,
        "set",
        "lincoln",
        "sro",
        "chen",
        "--from",
        "2026-03-04T08:00",
        "--until",
        "2026-03-04T12:00",
        "--by",
        "principal",
    )
    assert code == 0, out
    assert "covers sro at Lincoln High School from Wed 2026-03-04 08:00 CST" in out
    code, out = run(env, "lincoln", "--at", "2026-03-04T10:00")
    assert "Officer Marcus Chen (chen) — override from" in out
    at = chicago(2026, 3, 4, 10)
    route(app, add_tip(app, GUN, at), at)
    assert steps(app) == [(0, 0, ["chen"])]
    after = chicago(2026, 3, 4, 12)
    route(app, add_tip(app, "someone has a gun in the parking lot", after), after)
    assert steps(app)[-1] == (0, 0, ["ruiz"])


def test_bad_input_is_refused_with_a_usage_error(app: Flask, env: dict[str, str]) -> None:
    assert run(env, "nowhere")[0] == 2
    assert run(env, "lincoln", "--at", "tomorrow")[0] == 2
    assert (
        run(
            env,
            "set",
            "lincoln",
            "sro",
            "nobody",
            "--from",
            "2026-03-04T08:00",
            "--until",
            "2026-03-04T12:00",
        )[0]
        == 2
    )
    assert (
        run(
            env,
            "set",
            "washington",
            "sro",
            "ruiz",
            "--from",
            "2026-03-04T08:00",
            "--until",
            "2026-03-04T12:00",
        )[0]
        == 2
    )  # ruiz does not work at washington
    assert (
        run(
            env,
            "set",
            "lincoln",
            "sro",
            "chen",
            "--from",
            "2026-03-04T12:00",
            "--until",
            "2026-03-04T08:00",
        )[0]
        == 2
    )
