"""A local stand-in for Twilio's REST API that records what Twilio would have received."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_MESSAGE = re.compile(r"^/2010-04-01/Accounts/[^/]+/Messages/([A-Za-z0-9]+)\.json$")


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeTwilio:
    """Answers Messages/Calls creates with 201 and a SID; serves media bytes; scripted failures."""

    server: ThreadingHTTPServer | None = None
    requests: list[Recorded] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # status codes to answer before succeeding
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    delete_failures: list[int] = field(default_factory=list)  # answers to media DELETEs
    # Answers to message DELETEs (/Messages/<sid>.json), before 204s: 404, 409 or 400 (Twilio's
    # "still being delivered", error 20009), 500...
    message_delete_answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0
    # IncomingPhoneNumbers of the account: number -> its fields (sms_url, voice_url, ...)
    numbers: dict[str, dict[str, str]] = field(default_factory=dict)
    created: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, resource)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def messages(self) -> list[Recorded]:
        """Messages created (POSTs), in order; look-ups (GETs) are not messages."""
        with self.lock:
            return [
                r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")
            ]

    def calls(self) -> list[Recorded]:
        with self.lock:
            return [
                r for r in self.requests if r.method == "POST" and r.path.endswith("/Calls.json")
            ]

    def deletes(self) -> list[Recorded]:
        """DELETEs of media resources."""
        with self.lock:
            return [r for r in self.requests if r.method == "DELETE" and not _MESSAGE.match(r.path)]

    def message_deletes(self) -> list[str]:
        """The SIDs of messages a DELETE was asked for, in order (whatever was answered)."""
        with self.lock:
            found = (_MESSAGE.match(r.path) for r in self.requests if r.method == "DELETE")
            return [m.group(1) for m in found if m is not None]

    def handle(self, req: Recorded) -> tuple[int, bytes, str]:
        with self.lock:
            self.requests.append(req)
            if req.method == "DELETE":
                return self._delete(req)
            if req.method == "GET" and req.path.endswith("/IncomingPhoneNumbers.json"):
                wanted = req.form.get("PhoneNumber")
                found = [
                    {"sid": f"PN{i:032x}", "phone_number": number, **fields}
                    for i, (number, fields) in enumerate(sorted(self.numbers.items()))
                    if wanted in (None, number)
                ]
                page = {"incoming_phone_numbers": found, "next_page_uri": None, "page": 0}
                return 200, json.dumps(page).encode(), "application/json"
            if req.method == "GET" and req.path.endswith(("/Messages.json", "/Calls.json")):
                return self._list(req)
            if req.method == "GET" and req.path in self.media:
                body, ctype = self.media[req.path]
                return 200, body, ctype
            if self.failures:
                code = self.failures.pop(0)
                return (
                    code,
                    json.dumps({"code": 20500, "message": "fake failure", "status": code}).encode(),
                    "application/json",
                )
            self.counter += 1
            kind = "CA" if req.path.endswith("/Calls.json") else "SM"
            sid = f"{kind}{self.counter:032x}"
            payload: dict[str, Any] = {
                "sid": sid,
                "status": "queued",
                "to": req.form.get("To"),
                "from": req.form.get("From"),
                "body": req.form.get("Body"),
                "error_code": None,
                "date_created": formatdate(usegmt=True),
            }
            self.created.append((req.path, payload))
            return 201, json.dumps(payload).encode(), "application/json"

    def _list(self, req: Recorded) -> tuple[int, bytes, str]:
        """Messages.json / Calls.json read back as Twilio pages them, newest first, filtered
        by To and From: what `Notifier.find_sms` asks after an attempt nobody saw end."""
        key = "calls" if req.path.endswith("/Calls.json") else "messages"
        found = [
            payload
            for path, payload in reversed(self.created)
            if path == req.path
            and req.form.get("To") in (None, payload["to"])
            and req.form.get("From") in (None, payload["from"])
        ]
        page = {key: found, "next_page_uri": None, "page": 0, "page_size": len(found)}
        return 200, json.dumps(page).encode(), "application/json"

    def _delete(self, req: Recorded) -> tuple[int, bytes, str]:
        if not _MESSAGE.match(req.path):  # a media resource; `media` keeps serving it regardless
            if self.delete_failures:
                code = self.delete_failures.pop(0)
                return code, json.dumps({"status": code}).encode(), "application/json"
            return 204, b"", "application/json"
        if not self.message_delete_answers:
            return 204, b"", "application/json"
        code = self.message_delete_answers.pop(0)
        error = {404: 20404, 400: 20009, 409: 20009}.get(code, 20500)
        body = {"code": error, "message": "fake answer", "status": code}
        return code, json.dumps(body).encode(), "application/json"


def start_fake_twilio() -> FakeTwilio:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            url = urlparse(self.path)
            form = {k: v[-1] for k, v in parse_qs(raw or url.query, keep_blank_values=True).items()}
            path = url.path
            status, body, ctype = fake.handle(
                Recorded(self.command, path, form, {k: v for k, v in self.headers.items()})
            )
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake
