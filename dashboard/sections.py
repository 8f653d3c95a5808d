"""The patient page's extension point: section providers.

The patient page (dashboard/views.py) always shows the progress figures and the pain
chart. Everything else on it is a *section* handed in by a provider registered here:

    @patient_section
    def program_section(page: PatientPage) -> Section | None:
        assignment = programs.selectors.assignment_current(patient=page.patient)
        if assignment is None:
            return None
        return Section(
            key="program",
            title="Program",
            order=30,
            template="dashboard/sections/program.html",   # a partial of your own
            context={"assignment": assignment},
            bands=[Band(p.start, p.end, p.name) for p in assignment.phases],
        )

A provider gets the patient already scoped to the viewer and the page view already
audited; it returns None to show nothing. `bands` (date ranges: program phases) and
`markers` (single dates: injections, surgery, provocative tests) go onto the chart;
`template` + `context` render a block under its own `<h2>` (questionnaire scores, a
provocative-test timeline). `dashboard/sections/table.html` renders a plain table from
`columns` and `rows`, enough for most record sections. Sections appear by `order`.

Rules for providers: read through scoped selectors (`...visible_to(page.user)`), in a
constant number of queries (one or two), and never write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dashboard import selectors
from dashboard.charts import Band, Marker
from patients.models import Patient, User
from rehab.models import Alert

__all__ = ["Band", "Marker", "PatientPage", "Section", "patient_section", "patient_sections"]


@dataclass(frozen=True)
class PatientPage:
    """What a provider is given about the page being drawn."""

    user: User
    patient: Patient
    today: date  # the patient's local today
    start: date  # the chart's first date
    end: date  # the chart's last date
    path: str  # the page's own URL, for forms that come back to it


@dataclass
class Section:
    key: str  # unique on the page; also the heading's id
    title: str
    order: int = 100
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    bands: list[Band] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)


SectionProvider = Callable[[PatientPage], "Section | None"]
_PROVIDERS: list[SectionProvider] = []


def patient_section(provider: SectionProvider) -> SectionProvider:
    """Register a provider (a decorator); registering the same function twice is a no-op."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def patient_sections(page: PatientPage) -> list[Section]:
    sections = [s for s in (provider(page) for provider in _PROVIDERS) if s is not None]
    return sorted(sections, key=lambda s: (s.order, s.key))


# --------------------------------------------------------------------------- built-in


def resolve_dispositions() -> list[tuple[str, str]]:
    """What a clinician may choose; `trigger_cleared` is the system's own."""
    return [
        (value, label)
        for value, label in Alert.Disposition.choices
        if value != Alert.Disposition.TRIGGER_CLEARED
    ]


@patient_section
def alerts_section(page: PatientPage) -> Section:
    alerts = selectors.patient_alerts(user=page.user, patient=page.patient)
    return Section(
        key="alerts",
        title="Alerts",
        order=10,
        template="dashboard/sections/alerts.html",
        context={**alerts, "next": page.path, "dispositions": resolve_dispositions()},
    )


@patient_section
def recent_logs_section(page: PatientPage) -> Section:
    return Section(
        key="logs",
        title="Recent daily logs",
        order=50,
        template="dashboard/sections/logs.html",
        context={"logs": selectors.recent_logs(user=page.user, patient=page.patient)},
    )


# --------------------------------------------------------------------------- programs


@patient_section
def program_section(page: PatientPage) -> Section | None:
    program = selectors.patient_program(user=page.user, patient=page.patient, today=page.today)
    if program is None:
        return None
    return Section(
        key="program",
        title="Exercise program",
        order=20,
        template="dashboard/sections/program.html",
        context={"program": program, "today": page.today},
        bands=[
            Band(span.start, span.end, f"{span.phase.position}. {span.phase.name}")
            for span in program.spans
        ],
    )


# --------------------------------------------------------------------------- clinical record


@patient_section
def diagnoses_section(page: PatientPage) -> Section | None:
    diagnoses = selectors.patient_diagnoses(user=page.user, patient=page.patient)
    if not diagnoses:
        return None
    return Section(
        key="diagnoses",
        title="Working diagnoses",
        order=15,
        template="dashboard/sections/diagnoses.html",
        context={"diagnoses": diagnoses},
    )


@patient_section
def questionnaires_section(page: PatientPage) -> Section | None:
    instruments = selectors.patient_questionnaire_scores(user=page.user, patient=page.patient)
    if not instruments:
        return None
    return Section(
        key="questionnaires",
        title="Questionnaire scores",
        order=30,
        template="dashboard/sections/questionnaires.html",
        context={
            "instruments": [
                {
                    "scores": scores,
                    "thresholds": selectors.threshold_summary(scores.instrument),
                    "recovered": scores.instrument.thresholds.recovered_at_or_below,
                    "success": scores.instrument.thresholds.success_at_or_below,
                }
                for scores in instruments
            ]
        },
    )


@patient_section
def provocative_tests_section(page: PatientPage) -> Section | None:
    timeline = selectors.patient_provocative_tests(user=page.user, patient=page.patient)
    if not timeline.examinations:
        return None
    return Section(
        key="provocative-tests",
        title="Provocative tests",
        order=35,
        template="dashboard/sections/provocative_tests.html",
        context={"timeline": timeline},
        markers=[
            Marker(
                exam.date,
                f"Tests: {exam.positive} positive",
                kind="provocative-tests",
            )
            for exam in timeline.examinations
        ],
    )


@patient_section
def interventions_section(page: PatientPage) -> Section | None:
    rows = selectors.patient_interventions(user=page.user, patient=page.patient)
    if not rows:
        return None
    return Section(
        key="interventions",
        title="Interventions",
        order=40,
        template="dashboard/sections/interventions.html",
        context={"rows": rows},
        markers=[
            Marker(
                row.intervention.date,
                row.intervention.get_kind_display()
                + (f" {row.intervention.session_number}" if row.in_course else ""),
                kind="intervention",
            )
            for row in rows
        ],
    )


@patient_section
def imaging_section(page: PatientPage) -> Section | None:
    findings = selectors.patient_imaging(user=page.user, patient=page.patient)
    if not findings:
        return None
    return Section(
        key="imaging",
        title="Imaging",
        order=45,
        template="dashboard/sections/table.html",
        context={
            "columns": ["Date", "Modality", "Region", "Finding"],
            "rows": [
                [f"{f.date:%d %b %Y}", f.get_modality_display(), f.body_region, f.finding]
                for f in findings
            ],
        },
    )
