"""The JSON log formatter: one object per record, phone numbers and IP addresses scrubbed."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from tipline.platform.logs import JsonFormatter, scrub


@pytest.mark.parametrize(
    "text",
    [
        "from +15551230001",
        "from 15551230001",
        "call 5551230001",
        "call 555-123-0001",
        "call (555) 123-0001",
        "call 555.123.0001",
        "call 555 123 0001",
        "call +1 (555) 123-0001",
        "tel:+15551230001",
        "to:5551230001",
    ],
)
def test_phone_numbers_in_any_format_are_scrubbed(text: str) -> None:
    cleaned = scrub(text)
    assert "[number]" in cleaned
    assert "0001" not in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Listening at: http://127.0.0.1:5000 (1234)",
        "client 10.0.0.12 said hello",
        "bound to ::1 port 80",
        "peer fe80::1 and 2001:db8:0:0:0:0:0:1",
        "laddr=('192.168.1.20', 55019)",
    ],
)
def test_ip_addresses_are_scrubbed(text: str) -> None:
    cleaned = scrub(text)
    assert "[ip]" in cleaned
    for ip in ("127.0.0.1", "10.0.0.12", "::1", "fe80::1", "2001:db8", "192.168.1.20"):
        assert ip not in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Listening at: http://[ip]:5000 (1234)",
        "Booting worker with pid: 8210",
        "alert T5781 lincoln round 0 step 0 paged ruiz (0.0s after due)",
        "due at 2026-12-07T14:52:19.224+00:00, at 2026-12-07 14:52:19 and 12:30:05",
        "job route-c8645e2b7a7294393ae01fad1637e772 in 0:00:00.322663s",
    ],
)
def test_ordinary_numbers_dates_and_ids_stay(text: str) -> None:
    assert scrub(text) == text


def test_a_record_with_a_traceback_is_one_json_line() -> None:
    try:
        raise ValueError("bad value from +15551230001\nat 127.0.0.1")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["msg"] == "failed here"
    assert parsed["level"] == "error"
    assert "ValueError" in parsed["exc"]
    assert "+15551230001" not in line
    assert "127.0.0.1" not in line
