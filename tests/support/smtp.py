"""A local SMTP stub that offers no STARTTLS: just enough SMTP for smtplib."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class FakeSMTP(socketserver.ThreadingTCPServer):
    """Records (recipient, message text) of each mail, and every command it was sent."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.mails: list[tuple[str, str]] = []
        self.verbs: list[str] = []
        super().__init__(("127.0.0.1", 0), _SMTPHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"smtp://{host!s}:{port}"


class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, FakeSMTP)
        self.wfile.write(b"220 fake\r\n")
        rcpt = ""
        while line := self.rfile.readline():
            verb = line[:4].upper()
            server.verbs.append(verb.decode().strip())
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                server.mails.append((rcpt, data.decode()))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"RCPT":
                rcpt = line.decode().split("<", 1)[1].split(">", 1)[0]
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb == b"STAR":
                self.wfile.write(b"502 not implemented\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")  # EHLO: no extensions, so no STARTTLS


@contextmanager
def fake_smtp() -> Iterator[FakeSMTP]:
    smtp = FakeSMTP()
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    try:
        yield smtp
    finally:
        smtp.shutdown()
        smtp.server_close()
