"""Reads of education cards: the library a clinician sees, a patient's cards with their
read state, and the read receipts a clinician reviews. Constant queries per call."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from patients.models import Patient, User
from programs.education.render import render_markdown
from programs.models import (
    CardAssignment,
    CardRead,
    EducationCard,
    EducationCardVersion,
    Language,
)

DEFAULT_LANGUAGE = Language.ENGLISH.value


def language_of(code: str | None) -> str:
    """A language the product ships for a language code ("es", "es-ES"), else English."""
    base = (code or "").split("-")[0].split("_")[0].lower()
    return base if base in Language.values else DEFAULT_LANGUAGE


def latest_versions(card_ids: list[UUID]) -> dict[UUID, dict[str, EducationCardVersion]]:
    """Per card, the latest version in each language (one query)."""
    latest: dict[UUID, dict[str, EducationCardVersion]] = defaultdict(dict)
    for version in (
        EducationCardVersion.objects.filter(card_id__in=card_ids)
        .order_by("card_id", "language", "-number")
        .distinct("card_id", "language")
    ):
        latest[version.card_id][version.language] = version
    return latest


def version_in(versions: dict[str, EducationCardVersion], language: str) -> EducationCardVersion:
    """The version to show in `language`: its own, else English, else any there is."""
    found = versions.get(language) or versions.get(DEFAULT_LANGUAGE)
    if found is None:
        found = next(iter(versions.values()))
    return found


# --------------------------------------------------------------------------- library


@dataclass
class LibraryCard:
    card: EducationCard
    versions: dict[str, EducationCardVersion]  # the latest per language

    @property
    def title(self) -> str:
        return version_in(self.versions, DEFAULT_LANGUAGE).title

    @property
    def latest_list(self) -> list[EducationCardVersion]:
        return sorted(self.versions.values(), key=lambda v: v.language)


def card_list(*, user: User) -> list[LibraryCard]:
    """The cards a clinician may give: the global ones and their clinic's own."""
    cards = list(EducationCard.objects.visible_to(user).order_by("created_at", "id"))
    latest = latest_versions([card.pk for card in cards])
    return [LibraryCard(card, latest[card.pk]) for card in cards if latest.get(card.pk)]


def card_get(*, user: User, card_id: UUID | str) -> EducationCard:
    card: EducationCard = get_object_or_404(EducationCard.objects.visible_to(user), pk=card_id)
    return card


def library_card_get(*, user: User, card_id: UUID | str) -> LibraryCard:
    card = card_get(user=user, card_id=card_id)
    return LibraryCard(card, latest_versions([card.pk])[card.pk])


def card_history(*, card: EducationCard) -> list[EducationCardVersion]:
    """Every version of a card, newest first within each language."""
    return list(
        EducationCardVersion.objects.filter(card=card)
        .select_related("created_by__user")
        .order_by("language", "-number")
    )


# --------------------------------------------------------------------------- a patient's cards


@dataclass
class PatientCard:
    assignment: CardAssignment
    version: EducationCardVersion  # the one shown, in the patient's language
    read_at: datetime | None  # when this very version was marked read
    # The latest version of this card the patient marked read (any language), if any.
    last_read: EducationCardVersion | None = None
    last_read_at: datetime | None = None

    @property
    def card(self) -> EducationCard:
        return self.assignment.card

    @property
    def html(self) -> str:
        return render_markdown(self.version.body)

    @property
    def updated_since_read(self) -> bool:
        return self.read_at is None and self.last_read is not None


def patient_cards(*, user: User, patient: Patient, language: str) -> list[PatientCard]:
    """The patient's assigned cards in `language` (else English), oldest assigned first,
    each with its read state. Three queries. `patient` must be scoped by the caller."""
    assignments = list(
        CardAssignment.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("card", "program_phase")
        .order_by("assigned_at", "id")
    )
    latest = latest_versions([a.card_id for a in assignments])
    reads: dict[UUID, list[CardRead]] = defaultdict(list)
    for read in (
        CardRead.objects.visible_to(user)
        .filter(patient=patient, version__card_id__in=[a.card_id for a in assignments])
        .select_related("version")
        .order_by("read_at")
    ):
        reads[read.version.card_id].append(read)
    result = []
    for assignment in assignments:
        if not latest.get(assignment.card_id):
            continue
        shown = version_in(latest[assignment.card_id], language)
        card_reads = reads.get(assignment.card_id, [])
        this = next((r for r in card_reads if r.version_id == shown.pk), None)
        last = card_reads[-1] if card_reads else None
        result.append(
            PatientCard(
                assignment=assignment,
                version=shown,
                read_at=this.read_at if this else None,
                last_read=last.version if last else None,
                last_read_at=last.read_at if last else None,
            )
        )
    return result


def patient_card_get(
    *, user: User, patient: Patient, card_id: UUID | str, language: str
) -> PatientCard:
    """One assigned card; a card not assigned to this patient is a 404."""
    for item in patient_cards(user=user, patient=patient, language=language):
        if str(item.card.pk) == str(card_id):
            return item
    raise Http404("No such card.")


# --------------------------------------------------------------------------- receipts


@dataclass
class Receipt:
    version: EducationCardVersion
    read_at: datetime


@dataclass
class CardReceipts:
    assignment: CardAssignment
    latest: dict[str, EducationCardVersion]
    reads: list[Receipt] = field(default_factory=list)

    @property
    def title(self) -> str:
        return version_in(self.latest, DEFAULT_LANGUAGE).title

    @property
    def latest_list(self) -> list[EducationCardVersion]:
        return sorted(self.latest.values(), key=lambda v: v.language)

    @property
    def read_latest(self) -> bool:
        """Read in the latest version of some language."""
        latest_ids = {v.pk for v in self.latest.values()}
        return any(r.version.pk in latest_ids for r in self.reads)


def patient_receipts(*, user: User, patient: Patient) -> list[CardReceipts]:
    """Each card assigned to the patient with every version they marked read, and when.
    Three queries. `patient` must be scoped by the caller."""
    assignments = list(
        CardAssignment.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("card", "assigned_by__user", "program_phase")
        .order_by("assigned_at", "id")
    )
    latest = latest_versions([a.card_id for a in assignments])
    reads: dict[UUID, list[Receipt]] = defaultdict(list)
    for read in (
        CardRead.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("version")
        .order_by("read_at")
    ):
        reads[read.version.card_id].append(Receipt(read.version, read.read_at))
    return [
        CardReceipts(a, latest[a.card_id], reads.get(a.card_id, []))
        for a in assignments
        if latest.get(a.card_id)
    ]


def assignable_cards(*, user: User) -> QuerySet[EducationCard]:
    cards: QuerySet[EducationCard] = EducationCard.objects.visible_to(user)
    return cards
