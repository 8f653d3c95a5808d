from __future__ import annotations

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()


def _freeze_startup_objects() -> None:
    """Take what the process loaded at startup out of the garbage collector's reach.

    Django, DRF and every view module are ~120,000 objects that live as long as the
    process, yet each full (generation 2) collection walks them all: one request in
    five to ten to the caseload paid 40-60 ms for it on these machines, the p50/p95 gap
    of issue 8. Frozen, a full collection walks only what requests allocate. Objects
    freed by reference counting are freed as before; only a reference cycle among the
    startup objects would stay (none is expected to become garbage).
    """
    import_module(settings.ROOT_URLCONF)  # every view now, not on the first request
    gc.collect()
    gc.freeze()


_freeze_startup_objects()
