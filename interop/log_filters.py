"""A logging filter that hides calendar feed secrets in request paths.

The feed URL (/interfaces/ical/<token>.ics) carries its credential in the path, as every
calendar subscription URL does. Django logs the path of 4xx answers ("Not Found: /..."), and
runserver and gunicorn log every request line; this filter rewrites such records to
/interfaces/ical/<redacted>.ics. Wire it in LOGGING on the handlers and on the "django.server"
and "gunicorn.access" loggers (see docs/deploy.md).
"""

from __future__ import annotations

import logging
import re

_FEED_PATH = re.compile(r"(/ical/)[A-Za-z0-9_-]{8,}(\.ics)")


def redact(text: str) -> str:
    return _FEED_PATH.sub(r"\1<redacted>\2", text)


class RedactFeedTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "/ical/" in record.msg:
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "/ical/" in a for a in record.args
        ):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict) and any(
            isinstance(a, str) and "/ical/" in a for a in record.args.values()
        ):  # gunicorn's access log passes its atoms as a mapping
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True
