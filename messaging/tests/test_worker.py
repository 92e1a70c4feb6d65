"""A real `manage.py db_worker` process delivers a queued email to a real SMTP server.

The worker is a separate process, so it needs a database it can open: on PostgreSQL the test
database itself (this test is transactional, so what it writes is committed and flushed after);
on SQLite, whose test database lives in this process's memory, a fresh file migrated for the
occasion. Both processes use the test settings plus a small module pointing at the SMTP server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from messaging.tests.conftest import SmtpServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_DIR = Path(settings.BASE_DIR)
QUEUE_A_NOTICE = """
from messaging import services
from messaging.tests.factories import AppointmentFactory
appointment = AppointmentFactory(
    status="cancelled", cancelled_by="clinic", cancel_reason="practitioner ill",
    patient__preferred_contact="email",
)
message = services.cancellation_notice_queue(appointment=appointment)
print(message.pk)
"""
SHOW_STATUS = """
from messaging.models import OutboundMessage
message = OutboundMessage.objects.get(pk={pk})
print(message.status, message.attempts, bool(message.provider_message_id))
"""


def database_url(tmp_path: Path) -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = quote(db["USER"] or "")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"])
        return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{tmp_path / 'worker.sqlite3'}"


def worker_env(tmp_path: Path, smtp_port: int) -> dict[str, str]:
    (tmp_path / "worker_settings.py").write_text(
        "from config.settings_test import *  # noqa: F403\n"
        'ROOT_URLCONF = "messaging.tests.urls"\n'
        'EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"\n'
        'EMAIL_HOST = "127.0.0.1"\n'
        f"EMAIL_PORT = {smtp_port}\n"
        "EMAIL_TIMEOUT = 5\n"
        'QUIET_HOURS = ""\n'
        'PATIENTDESK_BASE_URL = "http://testserver"\n'
    )
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="worker_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(BASE_DIR)]),
        DATABASE_URL=database_url(tmp_path),
        PATIENTDESK_TESTING="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_real_worker_process_delivers_a_queued_email(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    # given a database the worker can open, with a cancellation notice queued through the
    # service (which enqueues its delivery task on commit)
    env = worker_env(tmp_path, smtp_server.port)
    if connection.vendor == "sqlite":
        manage(env, "migrate", "--noinput", "--verbosity", "0")
    message_id = int(manage(env, "shell", "--no-imports", "-c", QUEUE_A_NOTICE).split()[-1])
    assert smtp_server.envelopes == []
    # when a worker process runs
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable, "manage.py", "db_worker", "--queue-name", "default,messages",
            "--interval", "0.2", "--no-startup-delay", "--no-reload", "--worker-id", "test-worker",
        ],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not smtp_server.envelopes and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        status = ""
        while time.monotonic() < deadline:
            status = manage(env, "shell", "--no-imports", "-c", SHOW_STATUS.format(pk=message_id))
            if status.startswith("sent"):
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=15)
        log.close()
    # then the SMTP server got the notice and the outbox says sent, after one attempt
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["ann@example.org"]
    assert "has been cancelled" in smtp_server.messages()[0]
    assert "practitioner ill" not in smtp_server.messages()[0]
    assert status.split() == ["sent", "1", "True"], (tmp_path / "worker.log").read_text()[-3000:]
