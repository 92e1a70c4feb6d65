"""Background work for remittances (django-tasks; workers run `manage.py db_worker`).

`ingest_remittance(job_id)` ingests an uploaded 835 (remittance.services.ingest_job_execute);
the job row's status and report are what the upload's page polls.
"""

from __future__ import annotations

from django_tasks import task


@task(queue_name="default")
def ingest_remittance(job_id: int) -> str:
    from remittance.services import ingest_job_execute

    return str(ingest_job_execute(job_id=job_id).status)
