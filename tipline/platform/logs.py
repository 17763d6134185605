"""JSON logs for `tipline serve` and `tipline worker`: one object per line, scrubbed.

Every record (tipline's, gunicorn's, rq's, warnings, uncaught tracebacks) and every line a
library prints on stdout or stderr becomes one JSON object on stderr. Tip text is never
logged by tipline (it is sealed before it reaches a log line); what a library or a traceback
might still carry is scrubbed here: anything shaped like a phone number or an IP address is
replaced, because a log file is read by more people, and kept longer, than the database.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# An IPv6 address: "::" somewhere, or at least four groups; times (12:30:05) have neither.
_IPV6 = re.compile(
    r"(?<![\w:])(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{1,4}:){4})[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f.]{0,15}){2,8}(?![\w:])"
)
# Digits with the separators people write phone numbers with: +1 (555) 123-0001, 555.123.0001
# (after a colon only with a "+": "host:5000 (pid 12)" is a port, "tel:+1555..." a number).
_DIGITS = re.compile(r"(?:(?<=:)\+|(?<![\w:])\+?)\(?\d[\d \t().-]*\d\)?(?![\w])")
_AFTER_COLON = re.compile(r"(?<=:)\d{7,}(?![\w])")  # longer than any port
# Dates and times are left alone (their digits would otherwise read as a number).
_WHEN = re.compile(
    r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z)?)?)"
)
PHONE_DIGITS = 7  # this many digits in one run read as a phone number
REDACTED_PHONE = "[number]"
REDACTED_IP = "[ip]"


def scrub(text: str) -> str:
    """`text` with IP addresses and phone-number-like digit runs replaced."""
    text = _IPV4.sub(REDACTED_IP, text)
    text = _IPV6.sub(REDACTED_IP, text)

    def phone(m: re.Match[str]) -> str:
        run = m.group(0)
        return REDACTED_PHONE if sum(c.isdigit() for c in run) >= PHONE_DIGITS else run

    parts = _WHEN.split(text)  # odd items are dates and times
    for i in range(0, len(parts), 2):
        parts[i] = _AFTER_COLON.sub(REDACTED_PHONE, _DIGITS.sub(phone, parts[i]))
    return "".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(out)


class LinesToLog(io.TextIOBase):
    """A stdout/stderr stand-in: each line written becomes one record of `logger`."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger, self.level = logger, level
        self._buf = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            self._buf += s
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            if line.strip():
                self.logger.log(self.level, "%s", line.rstrip())
        return len(s)

    def flush(self) -> None:
        with self._lock:
            line, self._buf = self._buf, ""
        if line.strip():
            self.logger.log(self.level, "%s", line.rstrip())


def use_json_logs(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record, warning, uncaught exception and printed line out as JSON lines.

    Call once, first thing in a `serve` or `worker` process; forked children (gunicorn's
    workers, rq's scheduler) inherit it.
    """
    out = stream or sys.__stderr__ or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.stdout = LinesToLog(logging.getLogger("stdout"), logging.INFO)
    sys.stderr = LinesToLog(logging.getLogger("stderr"), logging.WARNING)
    return handler


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("tipline").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    logging.getLogger("tipline").error(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


__all__ = ["JsonFormatter", "LinesToLog", "scrub", "use_json_logs"]
