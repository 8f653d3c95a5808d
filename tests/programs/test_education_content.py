"""The seeded cards: both languages, idempotent seeding, and the Emergency Department card
held to the safety engine's own advice (docs/safety-rules.md)."""

from __future__ import annotations

import html
import importlib

import pytest
from django.apps import apps

from programs.education import content
from programs.education.render import render_markdown
from programs.models import EducationCard, EducationCardVersion, Language
from rehab.safety.rules import FALL_REMINDER, MESSAGES

pytestmark = pytest.mark.django_db

ED_CARD = "when-to-go-to-the-emergency-department"


def _seed() -> None:
    importlib.import_module("programs.migrations.0002_seed_templates").seed(apps)
    content.seed_cards(apps)


def test_it_repeats_the_safety_engines_cauda_equina_advice_word_for_word() -> None:
    assert MESSAGES["ces"] == content.CES_ADVICE_EN
    body = content.CARDS[ED_CARD]["texts"]["en"]["body"]
    assert MESSAGES["ces"] in body
    # Every cauda equina sign the safety check asks about (RF-CES-01..05) is named.
    for sign in ("between your legs", "bladder", "bowel", "sexual function", "both legs"):
        assert sign in body


def test_it_repeats_the_fall_safety_net() -> None:
    assert content.FALL_REMINDER_EN == FALL_REMINDER
    assert FALL_REMINDER in content.CARDS["after-a-fall"]["texts"]["en"]["body"]
    assert MESSAGES["major_injury"].split(". ")[1].startswith("If you can't move safely")
    assert (
        "stay still and call the emergency number"
        in (content.CARDS["after-a-fall"]["texts"]["en"]["body"])
    )


def test_it_gives_the_emergency_advice_in_spanish_too() -> None:
    body = content.CARDS[ED_CARD]["texts"]["es"]["body"]
    assert content.CES_ADVICE_ES in body
    assert "Urgencias" in body
    assert "número de emergencias" in body


def test_it_seeds_every_card_in_every_language_the_product_ships() -> None:
    _seed()
    for slug in content.CARDS:
        card = EducationCard.objects.get(clinic__isnull=True, slug=slug)
        languages = set(card.versions.values_list("language", flat=True))
        assert languages == set(Language.values), slug
    ed = EducationCardVersion.objects.get(card__slug=ED_CARD, language="en")
    # The advice survives rendering, in bold, word for word.
    rendered = render_markdown(ed.body)
    assert f"<strong>{MESSAGES['ces']}</strong>" in html.unescape(rendered)


def test_it_seeds_again_without_duplicating_or_overwriting() -> None:
    _seed()
    before = EducationCardVersion.objects.count()
    version = EducationCardVersion.objects.get(card__slug="after-a-fall", language="en")
    version.title = "Edited here"
    version.save()
    assert content.seed_cards(apps) == 0
    assert EducationCardVersion.objects.count() == before
    version.refresh_from_db()
    assert version.title == "Edited here"


def test_it_gives_the_seeded_programs_their_cards() -> None:
    _seed()
    card = EducationCard.objects.get(slug=ED_CARD)
    slugs = set(card.template_phases.values_list("template__slug", "position"))
    assert slugs == {("deep-gluteal-syndrome", 1), ("sciatica", 1)}
