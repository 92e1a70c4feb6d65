"""WSGI entry point (gunicorn: `config.wsgi:application`).

After Django and every app are loaded, the objects that exist now (modules, classes, URL
patterns, templates' code, settings) live as long as the worker. `gc.freeze()` moves them out
of the cyclic garbage collector's generations, so its periodic full collections no longer walk
them: on a request that happens to trigger one, that walk cost 20-25 ms (the day view's p95
against its p50; docs/performance.md). Nothing frozen is freed early or lost: it would never
have been garbage. The ICD-10-CM code set, which billing loads on first use, is loaded
before that, so no request waits for it and it is frozen with the rest.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from billing.icd10 import preload  # noqa: E402 (after the apps are loaded)

preload()  # the ICD-10-CM code set, so the first charge entry does not wait for it
gc.freeze()
