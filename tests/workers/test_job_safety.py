"""Jobs in Redis are JSON, and the worker runs only tipline's own jobs, whatever Redis holds."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

from flask import Flask
from rq import Callback, Queue
from rq.job import JobStatus
from sqlalchemy import select

from tests.conftest import post_signed, sms_params
from tipline.extensions import db
from tipline.models import Tip
from tipline.platform import queueing
from tipline.platform.services import ALERTS_QUEUE, QUEUE_NAMES, SERIALIZER, services
from workers.allowlist import ALLOWED, AllowlistJob, JobWorker


def plant(app: Flask, func_name: str, *args: object, **kw: object) -> str:
    """What anyone with write access to Redis can do: a JSON job naming any function."""
    queue = Queue(ALERTS_QUEUE, connection=services(app).redis, serializer=SERIALIZER)
    return queue.enqueue(func_name, *args, **kw).id


def work(app: Flask) -> None:
    svc = services(app)
    with app.app_context():
        JobWorker([svc.queue(n) for n in QUEUE_NAMES], connection=svc.redis).work(burst=True)


def refused(app: Flask, job_id: str) -> bool:
    """The job failed, and for the allowlist's reason."""
    job = AllowlistJob.fetch(job_id, connection=services(app).redis, serializer=SERIALIZER)
    result = job.latest_result()
    assert result is not None
    return job.get_status() == JobStatus.FAILED and "ForbiddenJob" in (result.exc_string or "")


def stored_tip(app: Flask) -> str:
    resp = post_signed(app.test_client(), "/sms/inbound", sms_params("a fight after school"))
    assert resp.status_code == 200
    with app.app_context():
        tip_id = db.session.scalars(select(Tip.id)).one()
    return str(tip_id)


def test_planted_job_naming_os_system_fails_without_running(app: Flask, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    job_id = plant(app, "os.system", f"touch {marker}")
    work(app)
    assert not marker.exists()
    assert refused(app, job_id)


def test_planted_job_module_is_never_imported(app: Flask, tmp_path: Path) -> None:
    """Refused before the import: a module's top-level code would run on import alone."""
    marker = tmp_path / "imported"
    module = "planted_by_attacker"
    (tmp_path / f"{module}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef run(*a):\n    return None\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        job_id = plant(app, f"{module}.run", on_failure=Callback(f"{module}.run"))
        work(app)
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()
    assert module not in sys.modules
    assert refused(app, job_id)


def test_job_in_redis_is_json(app: Flask) -> None:
    svc = services(app)
    tip_id = stored_tip(app)
    assert queueing.enqueue_route_tip(svc, tip_id)
    raw = svc.redis.hget(f"rq:job:route-{tip_id}", "data")
    assert isinstance(raw, bytes)
    func_name, instance, args, kwargs = json.loads(zlib.decompress(raw))
    assert func_name == "workers.jobs.route_tip"
    assert func_name in ALLOWED
    assert (instance, args, kwargs) == (None, [tip_id], {})


def test_allowed_jobs_still_run(app: Flask) -> None:
    svc = services(app)
    tip_id = stored_tip(app)
    assert queueing.enqueue_route_tip(svc, tip_id)
    work(app)
    with app.app_context():
        assert queueing.unrouted(db.session()) == []


def test_pickled_job_from_before_the_upgrade_fails_without_running(
    app: Flask, tmp_path: Path
) -> None:
    """Jobs an older version pickled are refused; the sweeper re-derives the work (deploy.md)."""
    marker = tmp_path / "unpickled"
    queue = Queue(ALERTS_QUEUE, connection=services(app).redis)  # rq's default: pickle
    job_id = queue.enqueue("os.system", f"touch {marker}").id
    work(app)
    assert not marker.exists()
    job = AllowlistJob.fetch(job_id, connection=services(app).redis, serializer=SERIALIZER)
    assert job.get_status() == JobStatus.FAILED
