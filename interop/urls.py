from django.urls import path

from interop import views

app_name = "interop"

urlpatterns = [
    path("", views.status, name="status"),
    path("outbound/<uuid:public_id>/retry/", views.outbound_retry, name="outbound_retry"),
    path("calendar-feeds/", views.feeds, name="feeds"),
    path("calendar-feeds/<uuid:public_id>/revoke/", views.feed_revoke, name="feed_revoke"),
    path("ical/<slug:token>.ics", views.ical_feed, name="ical_feed"),
]
