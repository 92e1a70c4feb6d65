import pytest
from django.test import Client


@pytest.mark.django_db
def test_every_response_carries_a_request_id() -> None:
    response = Client().get("/no-such-page/")
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_a_well_formed_incoming_request_id_is_kept() -> None:
    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="abc123def456")
    assert response["X-Request-ID"] == "abc123def456"


@pytest.mark.django_db
def test_a_malformed_incoming_request_id_is_replaced() -> None:
    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>"
