"""The translation catalogues in locale/ (docs/adding-things.md § A language, a translated text).

    python bin/translations.py compile   # locale/*/LC_MESSAGES/django.po -> .mo (build output)
    python bin/translations.py update    # add new texts to every .po, mark changed ones fuzzy
    python bin/translations.py check     # exit 1 if a .po drifted from the code or is unfinished

Babel does the work, in pure Python: GNU gettext's msgfmt and xgettext, which Django's
compilemessages and makemessages need, are not on every machine (nor in the slim image).
The texts are what the code passes to gettext (and its lazy and no-op forms) plus the
safety texts, which the pure rules module keeps as plain English under a key
(`rehab/safety/rules.py`; translated in `rehab/translations.py`). No Django is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
# The apps whose Python code may hold texts; their tests and migrations hold none.
PACKAGES = ("config", "patients", "programs", "rehab", "dashboard", "rights", "notifications")
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext_lazy": (1, 2),
    "pgettext_lazy": ((1, "c"), 2),
}
SAFETY_COMMENT = "Safety text '{key}', shown to patients: a clinician must review its translation."


def safety_texts() -> dict[str, str]:
    """The patient-facing safety texts by key, from the pure rules (no Django needed)."""
    sys.path.insert(0, str(ROOT))
    from rehab.safety import MESSAGES, REMINDERS

    return {**MESSAGES, **REMINDERS}


def template() -> Catalog:
    """Every text of the code, as a catalogue without translations."""
    catalog = Catalog(project="rehab", fuzzy=False)
    for package in PACKAGES:
        found = extract_from_dir(
            ROOT / package,
            method_map=[("**/migrations/**", "ignore"), ("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=("Translators:",),
            strip_comment_tags=True,
        )
        for filename, lineno, message, comments, context in found:
            catalog.add(
                message,
                locations=[(f"{package}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    for key, text in safety_texts().items():
        catalog.add(
            text,
            locations=[("rehab/safety/rules.py", 0)],
            auto_comments=[SAFETY_COMMENT.format(key=key)],
        )
    return catalog


def po_files() -> Iterator[Path]:
    yield from sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))


def read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parent.parent.name)


def compile_all() -> None:
    """Each .po to its .mo. Fuzzy entries are left out, so they show the English."""
    for path in po_files():
        catalog = read(path)
        with path.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)


def update_all() -> None:
    """Bring every .po in line with the code: new texts added untranslated, changed ones
    kept with their old translation marked fuzzy (never shown until a person fixes it),
    removed ones kept as obsolete comments."""
    source = template()
    for path in po_files():
        catalog = read(path)
        catalog.update(source, update_header_comment=False)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, include_lineno=False)


def problems() -> list[str]:
    """What is wrong with the catalogues: texts of the code missing from a .po (or kept in
    it though the code no longer has them), and entries untranslated, fuzzy or with other
    placeholders than their English."""
    wanted = {message.id for message in template() if message.id}
    safety = set(safety_texts().values())
    found: list[str] = []
    for path in po_files():
        catalog = read(path)
        name = path.relative_to(LOCALE.parent)
        present = {message.id for message in catalog if message.id}
        for msgid in sorted(wanted - present, key=str):
            found.append(f"{name}: missing {str(msgid)[:60]!r} (run bin/translations.py update)")
        for msgid in sorted(present - wanted, key=str):
            found.append(f"{name}: no longer in the code {str(msgid)[:60]!r}")
        for message in catalog:
            if not message.id:
                continue
            kind = "safety text" if message.id in safety else "text"
            if message.fuzzy:
                found.append(f"{name}: fuzzy {kind} {str(message.id)[:60]!r}")
            elif not message.string:
                found.append(f"{name}: untranslated {kind} {str(message.id)[:60]!r}")
        for message, errors in catalog.check():
            for error in errors:
                found.append(f"{name}: {str(message.id)[:60]!r}: {error}")
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "compile":
        compile_all()
    elif command == "update":
        update_all()
    elif command == "check":
        issues = problems()
        print("\n".join(issues) or "The catalogues match the code and are complete.")
        return 1 if issues else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
