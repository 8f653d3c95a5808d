"""The compose file and the image (docs/deployment.md): valid against the compose spec,
pinned, one image, a numeric non-root user, hashed static names, probes that do not
depend on the host names served, and email links that follow the port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.test import Client, override_settings

from tests.processes import production_env

BASE_DIR = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    return data


def test_it_validates_the_compose_file_against_the_compose_spec():
    # The spec's JSON schema as check-jsonschema vendors it (no download at test time).
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_compose())]
    assert not errors, "\n".join(errors)


def test_it_pins_postgres_redis_and_python_by_exact_version():
    services = _compose()["services"]
    assert re.fullmatch(r"postgres:16\.\d+(-[a-z]+)?", services["db"]["image"])
    assert re.fullmatch(r"redis:7\.\d+\.\d+(-[a-z]+)?", services["redis"]["image"])
    base = re.search(r"^FROM (\S+)", (BASE_DIR / "Dockerfile").read_text(), re.M)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base.group(1))


def test_it_builds_one_image_that_migrate_web_worker_and_beat_all_run():
    services = _compose()["services"]
    # The one-off `migrate` runs first (web waits for it), so it is the one that builds.
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["migrate"]
    images = {
        services[name]["image"]
        for name in ("migrate", "web", "worker-safety", "worker-default", "beat")
    }
    assert len(images) == 1
    assert not images & {services["db"]["image"], services["redis"]["image"]}
    for name in ("web", "worker-safety", "worker-default", "beat"):
        # Never pulled: a registry image of that name would not be this build.
        assert services[name]["pull_policy"] == "never", name


def test_it_runs_the_image_as_a_numeric_non_root_user():
    users = re.findall(r"^USER (\S+)", (BASE_DIR / "Dockerfile").read_text(), re.M)
    assert users, "no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit()
    assert int(user) > 0
    assert not group or (group.isdigit() and int(group) > 0)


def test_it_probes_web_health_without_relying_on_the_allowed_hosts():
    probe = json.dumps(_compose()["services"]["web"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/health/" in probe


@override_settings(ALLOWED_HOSTS=["rehab.example.com"])
@pytest.mark.django_db
def test_it_answers_health_probes_whatever_their_host():
    client = Client()
    assert client.get("/health/", HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/health/", HTTP_HOST="10.0.3.7").status_code == 200
    # Every other page still checks the host.
    assert client.get("/api/schema/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_it_names_static_files_by_their_content_in_production(tmp_path):
    # collectstatic with the production settings, as the image build runs it (so a CSS
    # that names a missing file fails here, not in the build), into a scratch folder:
    # every file gets a hashed copy and the manifest maps the names.
    env = production_env(database_url=os.environ["DATABASE_URL"])
    code = (
        "import django, sys; from django.conf import settings; "
        f"settings.STATIC_ROOT = {str(tmp_path)!r}; django.setup(); "
        "from django.core.management import call_command; "
        "call_command('collectstatic', '--noinput', verbosity=0); "
        "from django.templatetags.static import static; print(static('dashboard/dashboard.css'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"/static/dashboard/dashboard\.[0-9a-f]{12}\.css", result.stdout.strip())
    assert (tmp_path / "staticfiles.json").exists()


def test_it_links_emails_to_the_port_served(monkeypatch):
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(BASE_DIR))}
    code = (
        "import environ; environ.Env.read_env = classmethod(lambda cls, *a, **k: None); "
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.PUBLIC_BASE_URL)"
    )
    env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": "postgres://x@h/db",
        "PORT": "8123",
    }
    run = [sys.executable, "-c", code]
    result = subprocess.run(run, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "http://localhost:8123", result.stderr
    env["PUBLIC_BASE_URL"] = "https://rehab.example.com"
    result = subprocess.run(run, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "https://rehab.example.com", result.stderr
