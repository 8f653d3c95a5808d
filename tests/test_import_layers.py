"""The layers between the apps (docs/architecture.md § Layers), as import-linter checks them
in `make lint`: the contracts hold today, and an import that breaks them makes the check fail.

The failing cases run lint-imports over a copy of the project with one import planted, so
that the repository itself is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.processes import BASE_DIR

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict[str, Any]:
    contracts: dict[str, Any] = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]
    return contracts


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's packages and pyproject.toml, copied without caches."""
    shutil.copy(BASE_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in _contracts()["root_packages"]:
        shutil.copytree(
            BASE_DIR / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "templates", "static"),
        )
    return tmp_path


def test_it_keeps_the_contracts_of_the_repository():
    result = _lint_imports(BASE_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_it_lists_every_app_of_the_project_as_a_root_package():
    # A package missing from root_packages is invisible to every contract: a new app (e.g.
    # notifications/) must be added there, where the layers contract already places it.
    apps = {path.parent.name for path in BASE_DIR.glob("*/apps.py")}
    assert apps <= set(_contracts()["root_packages"])
    assert "config" in _contracts()["root_packages"]


def test_it_passes_on_the_unchanged_copy(project_copy):
    # The planted cases below fail because of the plant, not because of the copy.
    result = _lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # config imports no app (the inversion done for exceptions and health).
        ("config/planted.py", "from rehab.services import safety\n", "config.planted -> rehab"),
        # patients imports no other app, also from inside a function.
        (
            "patients/planted.py",
            "def f() -> None:\n    from programs import models\n",
            "patients.planted -> programs.models",
        ),
        # programs does not reach up to rehab.
        ("programs/planted.py", "import rehab.models\n", "programs.planted -> rehab.models"),
        # rehab does not reach up to the dashboard.
        ("rehab/planted.py", "from dashboard import views\n", "rehab.planted -> dashboard"),
    ],
)
def test_it_fails_on_a_planted_upward_import(project_copy, module, source, expected):
    (project_copy / module).write_text(source)

    result = _lint_imports(project_copy)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert expected in result.stdout


def test_it_fails_on_a_planted_cycle_inside_an_app(project_copy):
    # programs.rules is imported by programs.selectors; importing back closes a cycle even
    # though the import sits in a function.
    with (project_copy / "programs" / "rules.py").open("a") as rules:
        rules.write("\n\ndef _planted() -> None:\n    from programs import selectors  # noqa\n")

    result = _lint_imports(project_copy)

    assert result.returncode != 0
    assert "No cycles are allowed in programs" in result.stdout


@pytest.mark.parametrize(
    "module",
    # Services publish their tasks by name (config/enqueue.py); tasks import services.
    ["patients/services.py", "rights/services.py", "rehab/services/safety.py"],
)
def test_it_fails_on_a_service_importing_its_tasks(project_copy, module):
    app = module.split("/")[0]
    with (project_copy / module).open("a") as source:
        source.write(f"\n\ndef _planted() -> None:\n    from {app} import tasks  # noqa\n")

    result = _lint_imports(project_copy)

    assert result.returncode != 0
    assert f"No cycles are allowed in {app}" in result.stdout
    # Which of the two imports lint-imports suggests removing varies; either closes it.
    assert ".tasks -> .services" in result.stdout or ".services -> .tasks" in result.stdout


def test_it_fails_on_the_audit_writer_importing_the_services_back(project_copy):
    # patients.audit sits below the services that two_factor and consent are called by.
    with (project_copy / "patients" / "audit.py").open("a") as source:
        source.write("\n\ndef _planted() -> None:\n    from patients import services  # noqa\n")

    result = _lint_imports(project_copy)

    assert result.returncode != 0
    assert "No cycles are allowed in patients" in result.stdout


def test_it_ignores_no_import_of_the_project():
    # Every cycle was broken rather than listed as known; type-only imports are skipped by
    # the session option, not one by one.
    config = _contracts()
    assert config.get("exclude_type_checking_imports") is True
    assert all("ignore_imports" not in contract for contract in config["contracts"])
