"""The read replica and pooling settings (config/settings.py), loaded as production loads
them, in a child process."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.processes import BASE_DIR, production_env

_DUMP = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({alias: {k: d.get(k) for k in ('USER', 'HOST', 'TEST', 'OPTIONS', "
    "'DISABLE_SERVER_SIDE_CURSORS')} for alias, d in settings.DATABASES.items()}))"
)


def _load(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {**production_env(database_url="postgres://app:pw@db.internal/rehab"), **extra}
    return subprocess.run(
        [sys.executable, "-c", _DUMP],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_reads_everything_from_the_primary_without_a_replica_url() -> None:
    result = _load()
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)) == ["default"]


def test_it_adds_a_replica_that_tests_never_create_or_migrate() -> None:
    result = _load(DATABASE_REPLICA_URL="postgres://app:pw@replica.internal/rehab")
    assert result.returncode == 0, result.stderr
    replica = json.loads(result.stdout)["replica"]
    assert (replica["USER"], replica["HOST"]) == ("app", "replica.internal")
    assert replica["TEST"]["MIRROR"] == "default"
    assert replica["OPTIONS"]["connect_timeout"] == 2


def test_it_refuses_a_replica_url_with_the_owner_role() -> None:
    result = _load(
        DATABASE_MIGRATE_URL="postgres://owner:pw@db.internal/rehab",
        DATABASE_REPLICA_URL="postgres://owner:pw@replica.internal/rehab",
    )
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL names the owner role" in result.stderr


def test_it_configures_every_connection_for_a_transaction_pooler() -> None:
    result = _load(
        DATABASE_POOLER="pgbouncer",
        DATABASE_REPLICA_URL="postgres://app:pw@replica.internal/rehab",
    )
    assert result.returncode == 0, result.stderr
    for alias in json.loads(result.stdout).values():
        assert alias["DISABLE_SERVER_SIDE_CURSORS"] is True
        assert alias["OPTIONS"]["prepare_threshold"] is None


def test_it_refuses_an_unknown_pooler() -> None:
    result = _load(DATABASE_POOLER="pgpool")
    assert result.returncode != 0
    assert "DATABASE_POOLER" in result.stderr


def test_it_has_a_valid_compose_override_behind_pgbouncer() -> None:
    from importlib.resources import files

    import jsonschema
    import yaml

    pooled = yaml.safe_load((BASE_DIR / "docker-compose.pgbouncer.yml").read_text())
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(pooled)]
    assert not errors, "\n".join(errors)
    services = pooled["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert "@pgbouncer:6432/" in env["DATABASE_URL"]
        assert env["DATABASE_URL"].startswith("postgres://rehab_app:")
        assert env["DATABASE_POOLER"] == "pgbouncer"
    # Migrations keep their direct connection (compose's own `migrate`).
    assert "migrate" not in services
    ini = (BASE_DIR / "docker" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in ini


def test_it_names_real_models_as_the_safety_paths_primary_only_reads() -> None:
    from django.apps import apps
    from django.conf import settings

    assert settings.DATABASE_REPLICA_PRIMARY_MODELS
    for label in settings.DATABASE_REPLICA_PRIMARY_MODELS:
        assert apps.get_model(label)._meta.label_lower == label
