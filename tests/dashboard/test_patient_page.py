from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard import sections as dashboard_sections
from dashboard.sections import Band, Marker, PatientPage, Section
from patients.models import AuditEvent, Patient
from rehab.models import DailyLog
from tests.dashboard.conftest import make_alert

pytestmark = pytest.mark.django_db


def add_logs(patient: Patient, pains: list[int], **extra) -> list[DailyLog]:
    today = patient.local_today()
    return DailyLog.objects.bulk_create(
        DailyLog(
            patient=patient,
            date=today - timedelta(days=len(pains) - 1 - i),
            pain=pain,
            leg_pain=min(10, pain + 1),
            function=10 - pain,
            **extra,
        )
        for i, pain in enumerate(pains)
    )


def test_it_charts_every_log_with_its_date_and_value(web, patient):
    logs = add_logs(patient, [8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 2])
    content = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    points = re.findall(r'data-series="pain" data-date="([\d-]+)" data-value="(\d+)"', content)
    assert points == [(log.date.isoformat(), str(log.pain)) for log in logs]
    assert content.count('data-series="leg_pain"') == len(logs)
    assert content.count('data-series="function"') == len(logs)
    # The 7-day mean starts on the third log (3 logs needed), as current_pain_7d does.
    assert content.count('data-series="mean_7d"') == len(logs) - 2
    # Baseline = mean of the first week (8,8,7,7,6,6,5) = 6.7; MCID line at 6.7 - 2.
    assert 'data-series="baseline" data-value="6.7"' in content
    assert 'data-series="mcid" data-value="4.69"' in content
    assert f"{logs[-1].date:%a %d %b %Y}: pain 2/10" in content
    # No script or style from anywhere but this site.
    assert "kozea.github.io" not in content
    assert "/static/pygaljs/pygal-tooltips.min.js" in content


def test_it_serves_the_chart_script_and_stylesheet_locally(web):
    for url in ("/static/pygaljs/pygal-tooltips.min.js", "/static/dashboard/dashboard.css"):
        response = web.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 1000


def test_it_shows_the_progress_figures(web, patient):
    add_logs(patient, [8, 8, 8, 8, 8, 8, 8] + [5] * 14 + [3] * 7)
    content = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    figures = re.sub(r"\s+", " ", content)
    assert "Baseline pain</dt><dd>8.0" in figures
    assert "Last 7 days (mean)</dt><dd>3.0" in figures
    assert "-5.0 (-62.5 %)" in figures
    assert '<span class="yes">Reached</span>' in figures


def test_it_audits_every_view_of_the_patient_page(web, clinician, patient):
    for _ in range(2):
        assert (
            web.get(f"/dashboard/patients/{patient.pk}/", REMOTE_ADDR="10.1.2.3").status_code == 200
        )
    events = AuditEvent.objects.filter(
        actor=clinician.user, patient=patient, action="read", object_type="patient_dashboard"
    )
    assert events.count() == 2
    event = events.first()
    assert event is not None
    assert event.path == f"/dashboard/patients/{patient.pk}/"
    assert event.ip == "10.1.2.3"
    assert event.actor_email == clinician.user.email


def test_it_audits_a_refused_view_as_denied_not_as_a_read(web, other_patient):
    web.get(f"/dashboard/patients/{other_patient.pk}/")
    events = AuditEvent.objects.filter(patient=other_patient)
    assert not events.exclude(action="denied").exists()
    assert events.get().changes == {"status": 404}


def test_it_highlights_safety_answers_that_are_not_no(web, patient):
    _quiet, flagged = add_logs(patient, [5, 6])
    DailyLog.objects.filter(pk=flagged.pk).update(
        safety={
            "weakness": "foot_drop",
            "fever": True,
            "temperature_c": 38.4,
            "bladder_change": "no",
        },
        safety_advice={"severity": "urgent", "rules": ["RF-NEU-01"], "message": "..."},
    )
    content = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    notable = re.findall(r'<li class="notable" data-field="(\w+)">', content)
    assert notable == ["weakness", "fever", "temperature_c"]
    assert "<strong>Weakness:</strong> foot drop" in content
    assert "38.4 °C" in content
    assert 'class="has-notable"' in content
    assert "RF-NEU-01" in content


def test_it_shows_open_alerts_with_their_forms_and_past_ones_in_a_table(web, patient):
    open_alert = make_alert(patient)
    done = make_alert(patient, rule="RF-CES-01", severity="emergency", status="resolved")
    content = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    assert f'action="/dashboard/alerts/{open_alert.pk}/acknowledge/"' in content
    assert f'action="/dashboard/alerts/{open_alert.pk}/resolve/"' in content
    assert f'<label for="resolve-disposition-{open_alert.pk}">Outcome</label>' in content
    assert f'<tr data-alert-id="{done.pk}">' in content
    assert f'action="/dashboard/alerts/{done.pk}/resolve/"' not in content


def test_it_has_one_h1_and_headings_in_order(web, patient):
    add_logs(patient, [5, 5, 5])
    make_alert(patient)
    content = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    levels = [int(level) for level in re.findall(r"<h([1-6])[ >]", content)]
    assert levels.count(1) == 1
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))


def test_it_labels_every_form_field(web, patient):
    make_alert(patient)
    for url in (f"/dashboard/patients/{patient.pk}/", "/dashboard/", "/dashboard/alerts/"):
        content = web.get(url).content.decode()
        ids = re.findall(
            r'<(?:input|select|textarea)(?![^>]*type="(?:hidden|submit)")[^>]*\sid="([^"]+)"',
            content,
        )
        fields = re.findall(
            r'<(?:input|select|textarea)(?![^>]*type="(?:hidden|submit)")[^>]*>', content
        )
        assert len(ids) == len(fields), url
        for field_id in ids:
            assert f'<label for="{field_id}">' in content, (url, field_id)


def test_it_charts_the_period_asked_for(web, patient):
    add_logs(patient, [6] * 200)
    default = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    assert default.count('data-series="pain"') == 90
    year = web.get(f"/dashboard/patients/{patient.pk}/?range=365").content.decode()
    assert year.count('data-series="pain"') == 200
    bad = web.get(f"/dashboard/patients/{patient.pk}/?range=7000")
    assert bad.status_code == 200
    assert bad.content.decode().count('data-series="pain"') == 90


def test_it_renders_a_patient_without_logs(web, patient):
    response = web.get(f"/dashboard/patients/{patient.pk}/")
    assert response.status_code == 200
    assert b"No logs in this period" in response.content
    assert b"No logs yet." in response.content


def test_a_section_provider_adds_bands_markers_and_a_block(web, patient, monkeypatch):
    add_logs(patient, [7] * 30)
    today = patient.local_today()

    def program(page: PatientPage) -> Section:
        assert page.patient == patient
        return Section(
            key="program",
            title="Program",
            order=30,
            template="dashboard/sections/table.html",
            context={"columns": ["Phase", "From"], "rows": [["Calm and glide", "week 1"]]},
            bands=[Band(today - timedelta(days=20), today - timedelta(days=7), "Calm <and> glide")],
            markers=[Marker(today - timedelta(days=10), "Prolotherapy 1")],
        )

    monkeypatch.setattr(dashboard_sections, "_PROVIDERS", [*dashboard_sections._PROVIDERS, program])
    content = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    assert 'class="band band-phase"' in content
    assert f'data-start="{today - timedelta(days=20)}"' in content
    assert "Calm &lt;and&gt; glide" in content  # escaped, never raw
    assert f'data-kind="intervention" data-date="{today - timedelta(days=10)}"' in content
    assert "Prolotherapy 1" in content
    assert '<h2 id="section-program">Program</h2>' in content
    assert '<th scope="row">Calm and glide</th>' in content
    # Sections come in their order: alerts (10), the program (30), logs (50).
    assert (
        content.index("section-alerts")
        < content.index("section-program")
        < content.index("section-logs")
    )


def test_the_patient_page_costs_the_same_queries_for_a_week_or_a_year_of_logs(web, patient):
    add_logs(patient, [5] * 7)
    make_alert(patient)
    url = f"/dashboard/patients/{patient.pk}/?range=all"
    with CaptureQueriesContext(connection) as small:
        web.get(url)
    DailyLog.objects.filter(patient=patient).delete()
    add_logs(patient, [5] * 365)
    make_alert(patient, rule="RF-TH-01")
    with CaptureQueriesContext(connection) as large:
        web.get(url)
    assert len(large) == len(small)
