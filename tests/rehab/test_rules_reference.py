"""docs/safety-rules.md is generated from the rule definitions (rehab/rules_reference.py)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from rehab import rules_reference
from rehab.safety import review
from rehab.safety.rules import RULES


def test_it_finds_the_committed_reference_current():
    # Fails when a rule changed and `python manage.py rules_reference` was not run.
    assert rules_reference.REFERENCE_PATH.read_text() == rules_reference.render()
    call_command("rules_reference", "--check")


def test_it_names_every_rule_with_its_version_severity_and_evaluation():
    reference = rules_reference.render()
    for rule in RULES:
        assert f"## {rule.id}: {rule.title}" in reference
        assert f"| [{rule.id}](#" in reference
    assert "| RF-NP-01" not in reference  # rows link to the sections
    assert "| 2 | routine | background only | Constant night pain" in reference
    assert "| 1 | urgent | inline, with background branches | History of cancer" in reference


def test_it_words_a_condition_from_its_definition():
    (ces,) = [rule for rule in RULES if rule.id == "RF-CES-01"]
    assert rules_reference.describe(ces.to_json()["condition"]) == (
        "safety answer `saddle_numbness` is new"
    )


def test_it_fails_the_check_when_the_reference_is_stale(tmp_path, monkeypatch):
    stale = tmp_path / "safety-rules.md"
    stale.write_text(rules_reference.render().replace("Saddle numbness", "Saddle"))
    monkeypatch.setattr("rehab.management.commands.rules_reference.REFERENCE_PATH", stale)

    with pytest.raises(CommandError, match="stale"):
        call_command("rules_reference", "--check")


def test_it_writes_the_reference_and_then_finds_it_current(tmp_path, monkeypatch):
    target = tmp_path / "docs" / "safety-rules.md"
    monkeypatch.setattr("rehab.management.commands.rules_reference.REFERENCE_PATH", target)

    call_command("rules_reference")

    assert target.read_text() == rules_reference.render()
    call_command("rules_reference", "--check")


def test_it_refuses_a_condition_it_has_no_wording_for():
    # A new kind of predicate must get a wording, not vanish from the reference.
    with pytest.raises(ValueError, match="no wording"):
        rules_reference.describe({"moon_phase": "full"})


def test_it_lists_every_review_rule_with_what_it_fires_on():
    reference = rules_reference.render()
    for rule in review.REVIEW_RULES:
        assert f"| {rule.id} | {rule.version} | {rule.severity} | {rule.title} |" in reference
    assert rules_reference.review_rule_summary("NR-PAIN-03") == (
        "`worst_pain` >= 9 today and on the day before (calendar days)."
    )
