"""The sandbox: pictures and PDFs are decoded in a child process with hard limits.

A decompression bomb, a PDF that sends pypdf into a loop, or a decoder bug must cost at most
one small, short-lived process, never the worker that sends pages nor a web request. `clean`
runs `python -m tipline.intake.sandbox` with the file on stdin; the child caps itself
(RLIMIT_AS, RLIMIT_CPU, no core file, no file writes) before it imports a decoder, and the
parent kills it when the wall-clock limit passes. The child gets no environment (no keys, no
database URL), no inherited file descriptors and nothing to connect to; it answers on stdout
with one JSON line and, when the file was cleaned, the clean bytes. Its log lines (JSON, as
`tipline.platform.logs` writes them, naming only types, sizes and reasons) are read from its
stderr and logged again here, so they reach the worker's log in the worker's format.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MODULE = "tipline.intake.sandbox"
MiB = 1024 * 1024
OUTPUT_MAX = 4 * 5 * MiB  # a clean file is about the size of the upload; this is far past it
LOG_LINES = 50  # of the child's stderr, at most this many are logged again
REASONS = {  # a refusal's reason, as staff read it after "refused: "
    "type": "not a picture or PDF it could read",
    "size": "too large",
    "memory": "needed too much memory to check",
    "cpu": "took too long to check",
    "timeout": "took too long to check",
    "crashed": "the checker failed on it",
}


@dataclass(frozen=True)
class Limits:
    """What one check may use. A 50-megapixel photo decodes to 150 MB (twice while it is turned
    upright); the interpreter and the decoders take about 100 MB more."""

    memory: int = 512 * MiB  # RLIMIT_AS: address space, libraries included
    cpu: int = 10  # RLIMIT_CPU, seconds: SIGXCPU then, SIGKILL a second later
    wall: float = 20.0  # seconds, including start-up; then the parent kills it


class Refused(ValueError):
    """The sandbox did not return a clean file; `reason` is a key of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"attachment refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Cleaned:
    data: bytes
    content_type: str


def clean(data: bytes, limits: Limits | None = None) -> Cleaned:
    """The file without its metadata and the type it is stored as; raises Refused.

    Blocks for at most `limits.wall` seconds: call it from the media worker, never a request.
    """
    limits = limits or Limits()
    started = time.monotonic()
    args = [
        sys.executable,
        "-B",  # no .pyc writes: the child may not write files
        "-m",
        MODULE,
        str(limits.memory),
        str(limits.cpu),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our own module, no shell, no input in argv
            args,
            input=data,
            capture_output=True,
            timeout=limits.wall,
            env=_child_env(),
            cwd="/",
            check=False,
        )
    except subprocess.TimeoutExpired as e:  # run() has killed and reaped the child
        _relay(e.stderr)
        log.warning("sandbox: killed after %.0f s of wall-clock time", limits.wall)
        raise Refused("timeout") from None
    _relay(done.stderr)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        reason = _signal_reason(done.returncode)
        log.warning("sandbox: exited with %s after %.2f s", done.returncode, elapsed)
        raise Refused(reason)
    header, _, body = done.stdout.partition(b"\n")
    try:
        answer = json.loads(header)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise Refused("crashed")
    if not answer.get("ok"):
        reason = str(answer.get("reason"))
        raise Refused(reason if reason in REASONS else "crashed")
    content_type = answer.get("content_type")
    if not isinstance(content_type, str) or len(body) != answer.get("size"):
        raise Refused("crashed")
    return Cleaned(body, content_type)


def _child_env() -> dict[str, str]:
    """Nothing of the worker's environment (keys, URLs, tokens): only where tipline is."""
    package_root = str(Path(__file__).resolve().parents[2])
    return {
        "PATH": os.defpath,
        "PYTHONPATH": package_root,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",  # one 64 MiB arena per thread would eat the address space
        "OMP_NUM_THREADS": "1",
        "LC_ALL": "C.UTF-8",
    }


def _signal_reason(returncode: int) -> str:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "cpu"  # the soft CPU limit, or the hard one a second later
    if returncode == EXIT_MEMORY:
        return "memory"
    return "crashed"


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def _relay(stderr: bytes | None) -> None:
    """Log the child's JSON lines again here; anything else is only counted, never echoed."""
    if not stderr:
        return
    other = 0
    for n, line in enumerate(stderr.splitlines()):
        if n >= LOG_LINES:
            log.warning("sandbox: %d more log lines not shown", len(stderr.splitlines()) - n)
            break
        try:
            record = json.loads(line)
            msg = record["msg"]
            level = _LEVELS.get(record.get("level"), logging.WARNING)
        except (ValueError, KeyError, TypeError):
            other += 1
            continue
        log.log(level, "sandbox: %s", msg)
    if other:
        log.warning("sandbox: wrote %d lines that were not JSON (not shown)", other)


# -- the child ------------------------------------------------------------------------------

EXIT_MEMORY = 3


def _limit_self(memory: int, cpu: int) -> None:
    """Hard limits this process cannot raise again, set before any decoder is imported."""
    import resource  # noqa: PLC0415 - POSIX only, and only the child needs it

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no copy of the file
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # and writes none


def _answer(out: BinaryIO, header: dict[str, object], body: bytes = b"") -> None:
    out.write(json.dumps(header).encode() + b"\n" + body)
    out.flush()


def _clean_here(data: bytes) -> tuple[bytes, str]:
    """Decode and re-encode in this process: only ever called in the sandbox child."""
    from tipline.intake import filetypes, imageclean, pdfclean  # noqa: PLC0415

    reason = filetypes.refusal(data)
    content_type = filetypes.sniff(data)
    if reason is not None or content_type is None:
        raise Refused(reason or "type")
    try:
        if content_type == "application/pdf":
            return pdfclean.strip(data), content_type
        return imageclean.strip(data, content_type)
    except (imageclean.ImageRejected, pdfclean.PdfRejected) as e:
        raise Refused(e.reason) from None


def main(argv: list[str]) -> int:
    """`python -m tipline.intake.sandbox MEMORY CPU`: the file on stdin, the answer on stdout."""
    memory, cpu = int(argv[0]), int(argv[1])
    _limit_self(memory, cpu)
    out = sys.stdout.buffer
    data = sys.stdin.buffer.read()
    from tipline.platform.logs import use_json_logs  # noqa: PLC0415

    use_json_logs(stream=sys.__stderr__)  # also catches what a library prints
    child = logging.getLogger(MODULE)
    started = time.monotonic()
    try:
        cleaned, content_type = _clean_here(data)
        if len(cleaned) > OUTPUT_MAX:
            raise Refused("size")
    except Refused as e:
        child.info("refused (%s) after %.2f s", e.reason, time.monotonic() - started)
        _answer(out, {"ok": False, "reason": e.reason})
        return 0
    except MemoryError:
        cleaned = b""  # give back what can be given back before answering
        child.warning("refused: out of memory after %.2f s", time.monotonic() - started)
        _answer(out, {"ok": False, "reason": "memory"})
        return EXIT_MEMORY
    child.info(
        "cleaned %s, %d bytes in, %d out, %.2f s",
        content_type,
        len(data),
        len(cleaned),
        time.monotonic() - started,
    )
    _answer(out, {"ok": True, "content_type": content_type, "size": len(cleaned)}, cleaned)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
