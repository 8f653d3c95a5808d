"""What reaches a daily log from a row pointing at it (an alert, an alert occurrence, a
safety submission) reads the log's month alone, or no log at all.

The log table is partitioned by month of `date`, and these rows hold only the log's id:
a join or a fetch by id alone is planned over every partition. The pages that list them
show the log's date from the claimed ids (`rehab.querysets.log_date`), and read the logs
themselves, when they need them, by id and date (`DailyLogQuerySet.by_dated_ids`)
(docs/clinical-record.md § Where the daily logs are stored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard import selectors as dashboard_selectors
from patients.models import Clinician, Patient
from rehab.models import Alert, AlertOccurrence, DailyLog, SafetySubmission
from rehab.querysets import log_date
from rehab.selectors import record as record_selectors
from rehab.services import partitions
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _month(day: date, shift: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _partition(day: date) -> str:
    return f"rehab_dailylog_p{day:%Y_%m}"


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _planned(sql: str, params: Any = None) -> set[str]:
    """The log partitions PostgreSQL plans `sql` over (EXPLAIN without ANALYZE: a
    partition pruned when planned is not in the plan at all)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return {
        node["Relation Name"]
        for node in _plan_nodes(plan)
        if node.get("Relation Name", "").startswith("rehab_dailylog_")
    }


def _planned_qs(queryset: QuerySet[Any]) -> set[str]:
    return _planned(*queryset.query.sql_with_params())


def _log_reads(queries: list[dict[str, str]]) -> list[str]:
    """The statements among `queries` that read the log table itself (the claimed ids'
    table, "rehab_dailylogid", is another name)."""
    return [q["sql"] for q in queries if '"rehab_dailylog"' in q["sql"]]


@pytest.fixture
def logs(patient: Patient) -> list[DailyLog]:
    """A log every 9 days over the last year, each month's partition made: a read by id
    alone would plan 13 or more partitions."""
    today = patient.local_today()
    for month in range(-12, 0):
        partitions.partition_create(month=_month(today, month))
    made = DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=today - timedelta(days=days), pain=days % 10)
        for days in range(0, 365, 9)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rehab_dailylog")
    return sorted(made, key=lambda log: log.date)


def _alert_on(log: DailyLog, rule: str, *, stories: int = 0) -> Alert:
    """An open alert raised from `log`, with an occurrence on it; and `stories`
    occurrences of later logs raised from superseded versions (each a story on the
    alert's page, which shows the log's answers now)."""
    now = timezone.now()
    alert = Alert.objects.create(
        patient=log.patient,
        rule=rule,
        rule_version=1,
        severity="urgent",
        title="New or worsening leg weakness",
        basis={"safety.weakness": "foot_drop"},
        log=log,
        last_fired_at=now,
        opened_at=now - timedelta(hours=1),
    )
    AlertOccurrence.objects.create(alert=alert, log=log, fired_on=log.date, rule_version=1)
    later = DailyLog.objects.filter(patient=log.patient, date__gt=log.date).order_by("date")
    for other in list(later)[::4][:stories]:  # 36 days apart: each in its own month
        AlertOccurrence.objects.create(
            alert=alert,
            log=other,
            fired_on=other.date,
            rule_version=1,
            source=AlertOccurrence.Source.SUPERSEDED,
            log_version=1,
            basis={
                "submission": {
                    "version": 1,
                    "submitted_at": now.isoformat(),
                    "answers": {"pain": 10, "safety": {"weakness": "foot_drop"}},
                }
            },
        )
    return alert


def test_an_alerts_log_date_is_read_from_the_claimed_ids_not_a_log_partition(logs, patient):
    log = logs[3]
    alert = _alert_on(log, "RF-NEU-01")
    assert len(_planned_qs(Alert.objects.filter(pk=alert.pk).select_related("log"))) > 12
    annotated = Alert.objects.filter(pk=alert.pk).annotate(log_date=log_date())
    assert _planned_qs(annotated) == set()
    assert annotated.get().log_date == log.date
    # An edit moving the log to another month: the claim, so the date shown, follows it.
    moved_to = patient.local_today() - timedelta(days=1)
    DailyLog.objects.filter(patient=patient, date=moved_to).delete()
    DailyLog.objects.filter(pk=log.pk).update(date=moved_to)
    assert annotated.get().log_date == moved_to
    no_log = Alert.objects.filter(pk=alert.pk).update(log=None)
    assert no_log == 1
    assert annotated.get().log_date is None


def test_logs_by_dated_ids_are_planned_over_their_months_alone(logs, patient):
    chosen = [logs[2], logs[20], logs[21]]
    dates = {log.pk: log.date for log in chosen}
    read = DailyLog.objects.filter(pk__in=dates, date__in=set(dates.values()))
    assert _planned_qs(read) == {_partition(log.date) for log in chosen}
    with CaptureQueriesContext(connection) as queries:
        found = DailyLog.objects.by_dated_ids(dates)
    assert found == {log.pk: log for log in chosen}
    assert len(queries) == 1
    # A log moved to another month since its date was read is read again, by its claim.
    moved_to = patient.local_today() - timedelta(days=2)
    DailyLog.objects.filter(patient=patient, date=moved_to).delete()
    DailyLog.objects.filter(pk=logs[2].pk).update(date=moved_to)
    assert DailyLog.objects.by_dated_ids(dates)[logs[2].pk].date == moved_to
    # An id no log has is left out.
    DailyLog.objects.filter(pk=logs[20].pk).delete()
    assert set(DailyLog.objects.by_dated_ids(dates)) == {logs[2].pk, logs[21].pk}


def test_the_inbox_and_the_patients_alerts_read_no_log_partition(
    logs, patient, clinician: Clinician
):
    raised = {
        rule: _alert_on(log, rule)
        for rule, log in (("RF-NEU-01", logs[1]), ("RF-CES-01", logs[15]), ("NR-PAIN-01", logs[30]))
    }
    web = Client()
    web.force_login(clinician.user)
    web.get("/dashboard/alerts/")  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as inbox:
        response = web.get("/dashboard/alerts/")
    assert response.status_code == 200
    assert _log_reads(inbox.captured_queries) == []
    content = response.content.decode()
    for alert in raised.values():
        assert f"from the log of {alert.log.date:%d %b %Y}" in content  # type: ignore[union-attr]

    with CaptureQueriesContext(connection) as section:
        alerts = dashboard_selectors.patient_alerts(user=clinician.user, patient=patient)
    assert _log_reads(section.captured_queries) == []
    assert {a.pk: a.log_date for a in alerts["unresolved"]} == {  # type: ignore[attr-defined]
        a.pk: a.log.date  # type: ignore[union-attr]
        for a in raised.values()
    }
    page = web.get(f"/dashboard/patients/{patient.pk}/").content.decode()
    assert f"from the log of {logs[15].date:%d %b %Y}" in page


def test_the_inbox_costs_the_same_queries_for_alerts_on_logs_of_3_or_9_months(
    logs, patient, clinician: Clinician
):
    from tests.factories import PatientFactory

    web = Client()
    web.force_login(clinician.user)

    def alerts_on_new_patients(n: int) -> None:
        for i in range(n):
            other = PatientFactory.create(clinic=clinician.clinic, care_team=[clinician])
            day = logs[(4 * Alert.objects.count()) % len(logs)].date  # months apart
            _alert_on(DailyLog.objects.create(patient=other, date=day, pain=i), "RF-NEU-01")

    def inbox() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert web.get("/dashboard/alerts/").status_code == 200
        assert _log_reads(queries.captured_queries) == []
        return len(queries)

    alerts_on_new_patients(3)
    inbox()
    few = inbox()
    alerts_on_new_patients(6)
    assert Alert.objects.count() == 9
    assert inbox() == few


def test_the_alert_page_reads_its_occurrences_logs_from_their_months_alone(
    logs, patient, clinician: Clinician
):
    alert = _alert_on(logs[5], "RF-NEU-01", stories=3)
    story_logs = list(AlertOccurrence.objects.filter(alert=alert, source="superseded"))
    months = {_partition(o.fired_on) for o in story_logs}
    assert len(months) >= 2
    web = Client()
    web.force_login(clinician.user)
    web.get(f"/dashboard/alerts/{alert.pk}/")
    with CaptureQueriesContext(connection) as page:
        response = web.get(f"/dashboard/alerts/{alert.pk}/")
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count("What the patient first said") >= 1
    assert f"from the log of {logs[5].date:%d %b %Y}" in content
    # One read of the stories' logs, by id and date: their months' partitions alone.
    reads = _log_reads(page.captured_queries)
    assert len(reads) == 1
    assert _planned(reads[0]) == months

    # Fewer stories: the same queries.
    AlertOccurrence.objects.filter(pk__in=[o.pk for o in story_logs[1:]]).delete()
    with CaptureQueriesContext(connection) as fewer:
        assert web.get(f"/dashboard/alerts/{alert.pk}/").status_code == 200
    assert len(fewer) == len(page)
    assert [_planned(sql) for sql in _log_reads(fewer.captured_queries)] == [
        {_partition(story_logs[0].fired_on)}
    ]


def test_the_alert_api_reads_no_log_partition(logs, patient, clinician_client):
    alert = _alert_on(logs[5], "RF-NEU-01", stories=2)
    with CaptureQueriesContext(connection) as queries:
        listed = clinician_client.get("/api/v1/clinician/alerts/")
        detail = clinician_client.get(f"/api/v1/clinician/alerts/{alert.pk}/")
    assert listed.status_code == detail.status_code == 200
    assert _log_reads(queries.captured_queries) == []
    assert detail.json()["log_id"] == str(logs[5].pk)
    assert {o["log_id"] for o in detail.json()["occurrences"]} == {
        str(o.log_id) for o in AlertOccurrence.objects.filter(alert=alert)
    }


def test_the_timelines_alerts_read_no_log_partition(logs, patient):
    alert = _alert_on(logs[7], "RF-NEU-01")
    with CaptureQueriesContext(connection) as queries:
        entries = record_selectors._alerts(patient)
    assert _log_reads(queries.captured_queries) == []
    assert [(e.id, e.date) for e in entries] == [(str(alert.pk), logs[7].date)]


@pytest.fixture
def operator() -> Client:
    user = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_the_admins_alert_page_and_submission_list_read_no_log_partition(logs, patient, operator):
    alert = _alert_on(logs[5], "RF-NEU-01", stories=2)
    submissions = [
        SafetySubmission.objects.create(
            patient=patient,
            log=log,
            kind=SafetySubmission.Kind.SUPERSEDED,
            version=1,
            content={"pain": 3},
            content_hash=log.pk.hex,
            submitted_at=timezone.now(),
        )
        for log in (logs[8], logs[25])
    ]
    operator.get("/admin/rehab/safetysubmission/")
    with CaptureQueriesContext(connection) as pages:
        change = operator.get(f"/admin/rehab/alert/{alert.pk}/change/")
        listed = operator.get("/admin/rehab/safetysubmission/")
        alerts = operator.get("/admin/rehab/alert/")
        submission = operator.get(f"/admin/rehab/safetysubmission/{submissions[0].pk}/change/")
    assert change.status_code == listed.status_code == alerts.status_code == 200
    assert submission.status_code == 200
    assert f"{logs[8].date.isoformat()}</a>" in submission.content.decode()
    assert _log_reads(pages.captured_queries) == []
    page = change.content.decode()
    for occurrence in AlertOccurrence.objects.filter(alert=alert):
        link = f'<a href="/admin/rehab/dailylog/{occurrence.log_id}/change/">'
        assert f"{link}{occurrence.fired_on.isoformat()}</a>" in page
    assert f"{logs[5].date.isoformat()}</a>" in page  # the alert's own log
    for log in (logs[8], logs[25]):
        assert f"/admin/rehab/dailylog/{log.pk}/change/" in listed.content.decode()
        assert log.date.isoformat() in listed.content.decode()
