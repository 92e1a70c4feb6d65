from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "interop"
    verbose_name = "Interfaces (HL7 v2, iCalendar)"

    def ready(self) -> None:
        from interop import receivers

        receivers.connect()
