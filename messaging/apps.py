from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messages to patients and staff"

    def ready(self) -> None:
        from messaging import receivers
        from scheduling.events import appointment_changed, waitlist_offered

        appointment_changed.connect(
            receivers.on_appointment_changed, dispatch_uid="messaging.appointment_changed"
        )
        waitlist_offered.connect(
            receivers.on_waitlist_offered, dispatch_uid="messaging.waitlist_offered"
        )
