import pytest
from django.test import Client


@pytest.mark.django_db
def test_health_check_answers_ok_without_login() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_health_check_refuses_writes() -> None:
    assert Client().post("/healthz").status_code == 405


@pytest.mark.django_db
def test_health_check_reports_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db.backends.utils import CursorWrapper

    def broken(self: CursorWrapper, sql: str, params: object = None) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
