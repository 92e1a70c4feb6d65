"""Validation of the SMS gateway's webhook payloads (JSON bodies, checked field by field)."""

from __future__ import annotations

from django import forms

from messaging.services import RECEIPT_STATUSES


class SmsStatusForm(forms.Form):
    """A delivery receipt: {"message_id": "...", "status": "delivered", "error_code": "..."}."""

    message_id = forms.CharField(max_length=200)
    status = forms.ChoiceField(choices=[(s, s) for s in sorted(RECEIPT_STATUSES)])
    error_code = forms.CharField(max_length=40, required=False)

    @classmethod
    def from_payload(cls, payload: dict[str, object]) -> SmsStatusForm:
        status = payload.get("status", "")
        return cls(
            {
                "message_id": payload.get("message_id", ""),
                "status": status.strip().lower() if isinstance(status, str) else status,
                "error_code": payload.get("error_code", ""),
            }
        )


class SmsInboundForm(forms.Form):
    """An inbound text: {"from": "+15552013344", "body": "STOP"}."""

    from_number = forms.CharField(max_length=40)
    body = forms.CharField(max_length=1600, required=False, strip=False)

    @classmethod
    def from_payload(cls, payload: dict[str, object]) -> SmsInboundForm:
        return cls({"from_number": payload.get("from", ""), "body": payload.get("body", "")})
