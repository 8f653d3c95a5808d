"""The libraries only a rare task uses stay out of every process until it runs
(docs/deployment.md § Memory): a process that imports the project's URLconf and every
task module loads neither the FHIR models (with pydantic) nor pywebpush (with aiohttp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.processes import BASE_DIR

HEAVY = ("fhir", "pydantic", "pywebpush", "aiohttp")

PROBE = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
from config.celery import app
get_resolver().url_patterns  # the web's URLconf, every view module with it
app.loader.import_default_modules()  # what a worker registers
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _loaded(code: str) -> set[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": "."}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_web_and_the_workers_import_no_heavy_library_they_rarely_use():
    loaded = _loaded(PROBE)
    # The probe saw the project.
    assert "rights" in loaded
    assert "notifications" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_a_fhir_export_and_a_web_push_still_find_them():
    loaded = _loaded(
        PROBE.replace(
            "print(",
            "from rights.fhir import _bundle_model\n_bundle_model()\nimport pywebpush\nprint(",
            1,
        )
    )
    assert {"fhir", "pydantic", "pywebpush"} <= loaded
