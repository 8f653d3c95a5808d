"""The translation catalogues (bin/translations.py): complete, and in step with the code."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from rehab.safety import MESSAGES

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "translations_tool", ROOT / "bin" / "translations.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_text_of_the_code_is_translated_and_nothing_else_is_in_the_catalogues():
    tool = _tool()
    assert list(tool.po_files()), "no catalogue in locale/"
    assert tool.problems() == []


@pytest.fixture
def planted(tmp_path: Path) -> tuple[ModuleType, Path]:
    """The tool pointed at a copy of locale/, to plant faults in."""
    tool = _tool()
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    setattr(tool, "LOCALE", tmp_path / "locale")  # noqa: B010 - a module loaded from a path
    return tool, tmp_path / "locale" / "es" / "LC_MESSAGES" / "django.po"


def test_it_fails_on_a_fuzzy_or_untranslated_safety_text(planted):
    tool, po = planted
    catalog = tool.read(po)
    catalog[MESSAGES["ces"]].flags.add("fuzzy")
    catalog[MESSAGES["weakness"]].string = ""
    with po.open("wb") as handle:
        tool.write_po(handle, catalog, width=100, include_lineno=False)
    found = tool.problems()
    fuzzy = "locale/es/LC_MESSAGES/django.po: fuzzy safety text"
    assert any(line.startswith(fuzzy) for line in found)
    assert any("untranslated safety text 'New or increasing weakness" in line for line in found)


def test_it_fails_when_the_code_and_the_catalogue_drift_apart(planted, monkeypatch):
    tool, _po = planted
    texts = {**tool.safety_texts(), "new_rule": "A new message nobody translated."}
    monkeypatch.setattr(tool, "safety_texts", lambda: texts)
    assert any("missing 'A new message nobody translated.'" in line for line in tool.problems())

    # `update` adds it, untranslated, and the check still fails until a person translates.
    tool.update_all()
    assert any("untranslated safety text 'A new message" in line for line in tool.problems())

    monkeypatch.setattr(tool, "safety_texts", lambda: {**texts, "new_rule": "Reworded."})
    tool.update_all()
    found = tool.problems()
    # The reworded text is new (untranslated); its old entry is kept obsolete, not checked.
    assert any("untranslated safety text 'Reworded.'" in line for line in found)
    assert not any("A new message nobody" in line for line in found)
    # Only the planted text is wrong: the rest of the catalogue is still in step.
    assert all("Reworded." in line for line in found)


def test_the_compiled_catalogue_leaves_fuzzy_entries_in_english(planted):
    tool, po = planted
    catalog = tool.read(po)
    catalog[MESSAGES["ces"]].flags.add("fuzzy")
    with po.open("wb") as handle:
        tool.write_po(handle, catalog, width=100, include_lineno=False)
    tool.compile_all()
    from babel.messages.mofile import read_mo

    with po.with_suffix(".mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert MESSAGES["ces"] not in compiled
    assert compiled[MESSAGES["weakness"]].string
