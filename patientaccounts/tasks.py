"""Background work for patient accounts (django-tasks; workers run `manage.py db_worker`).

`run_statements(run_id)` generates a StatementRun's statements; the run row's `done`/`total`
counts are what the statement run page polls. Re-running a finished run does nothing, and a
statement already made for the same patient and date is not made twice.
"""

from __future__ import annotations

from django_tasks import task


@task(queue_name="default")
def run_statements(run_id: int) -> dict[str, int]:
    from patientaccounts.services import statement_run_execute

    run = statement_run_execute(run_id=run_id)
    return {"total": run.total, "done": run.done}
