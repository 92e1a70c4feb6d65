"""The upload screen and the upload's page: access, the background job, its report."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
from remittance.models import IngestJob, JobStatus, RemittanceFile
from remittance.services import ingest_job_create, ingest_job_execute

pytestmark = pytest.mark.django_db

UPLOAD = "/remittances/upload/"


def sample_bytes(trace: str = "T1") -> bytes:
    line = SampleLine("99213", Decimal("100.00"), Decimal("80.00"), (("CO", "45", Decimal(20)),))
    claim = SampleClaim("NOBODY", (line,))
    return render_835(SampleRemittance(claims=[claim], trace=trace)).encode()


def job_url(job: IngestJob) -> str:
    return reverse("remittance:job", args=[job.public_id])


def test_billing_specialist_sees_the_upload_form(persona, login_client):
    response = login_client(persona("billing")).get(UPLOAD)
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content
    assert b"autofocus" in response.content


def test_upload_keeps_the_file_and_enqueues_the_ingest_after_commit(
    persona, login_client, django_capture_on_commit_callbacks
):
    # given
    user = persona("billing")
    client = login_client(user)
    upload = SimpleUploadedFile("era.835", sample_bytes())
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(UPLOAD, {"file": upload})
    # then
    job = IngestJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == job_url(job)
    assert (job.file_name, job.status, job.uploaded_by) == ("era.835", JobStatus.QUEUED, user)
    assert len(callbacks) == 1
    assert AuditEvent.objects.filter(event="remittance.upload", user_id=user.pk).exists()


def test_upload_without_a_file_shows_the_error_next_to_the_field(persona, login_client):
    response = login_client(persona("billing")).post(UPLOAD, {})
    assert response.status_code == 200
    assert b"Choose the 835 file to upload." in response.content
    assert b"is-invalid" in response.content
    assert b"error-summary" in response.content
    assert not IngestJob.objects.exists()


@pytest.mark.parametrize("name", ["frontdesk", "officemanager", "outsider"])
def test_roles_that_do_not_post_remittances_get_403(persona, login_client, name):
    client = login_client(persona(name))
    assert client.get(UPLOAD).status_code == 403
    assert client.post(UPLOAD, {"file": SimpleUploadedFile("a.835", b"x")}).status_code == 403
    assert not IngestJob.objects.exists()


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(UPLOAD)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_upload_refuses_other_methods(persona, login_client):
    assert login_client(persona("billing")).put(UPLOAD).status_code == 405


def test_the_job_runs_once_and_its_page_shows_the_report(persona, login_client):
    # given a queued upload
    user = persona("billing")
    job = ingest_job_create(actor=user, file_name="era.835", data=sample_bytes(), enqueue=False)
    # when the worker runs it (twice: the second run does nothing)
    ingest_job_execute(job_id=job.pk)
    ingest_job_execute(job_id=job.pk)
    # then
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.report["claims"] == 1
    assert job.report["unmatched"] == 1
    assert job.report["status"] == "posted"
    assert bytes(job.content) == b""
    assert RemittanceFile.objects.count() == 1
    response = login_client(user).get(job_url(job))
    assert response.status_code == 200
    assert b"posted: 1 claim payments" in response.content
    assert b"hx-get" not in response.content


def test_a_running_job_page_polls_with_htmx_and_the_partial_answers(persona, login_client):
    user = persona("billing")
    job = ingest_job_create(actor=user, file_name="era.835", data=sample_bytes(), enqueue=False)
    client = login_client(user)
    page = client.get(job_url(job))
    partial = client.get(job_url(job), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in page.content
    assert b"<html" in page.content
    assert b"<html" not in partial.content
    assert b'id="job-progress"' in partial.content


def test_job_page_refuses_roles_without_remittance_work_and_unknown_ids(persona, login_client):
    job = ingest_job_create(
        actor=persona("billing"), file_name="era.835", data=sample_bytes(), enqueue=False
    )
    assert login_client(persona("frontdesk")).get(job_url(job)).status_code == 403
    missing = reverse("remittance:job", args=["00000000-0000-0000-0000-000000000000"])
    assert login_client(persona("billing")).get(missing).status_code == 404


def test_job_page_refuses_post(persona, login_client):
    user = persona("billing")
    job = ingest_job_create(actor=user, file_name="era.835", data=sample_bytes(), enqueue=False)
    assert login_client(user).post(job_url(job)).status_code == 405


def test_a_refused_file_is_reported_on_the_job_page(persona, login_client):
    user = persona("billing")
    data = sample_bytes().replace(b"BPR*I*80*", b"BPR*I*81*")
    job = ingest_job_create(actor=user, file_name="bad.835", data=data, enqueue=False)
    ingest_job_execute(job_id=job.pk)
    response = login_client(user).get(job_url(job))
    assert b"segment 4 (BPR) BPR02: the payment does not balance" in response.content
