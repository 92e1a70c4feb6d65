from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("a/<str:token>/confirm/", views.appointment_confirm, name="appointment_confirm"),
    path("a/<str:token>/cancel/", views.appointment_cancel, name="appointment_cancel"),
    path("o/<str:token>/accept/", views.offer_accept, name="offer_accept"),
    path("o/<str:token>/decline/", views.offer_decline, name="offer_decline"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("sms/status", views.sms_status, name="sms_status"),
    path("sms/inbound", views.sms_inbound, name="sms_inbound"),
    path("reminder-calls/", views.reminder_calls, name="reminder_calls"),
]
