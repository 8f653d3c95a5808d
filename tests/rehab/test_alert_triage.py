"""The per-patient alert triage (rehab.models.PatientAlertTriage) against its definition.

The database keeps it (a trigger, rehab/migrations/0016_caseload_sort_keys.py): after
random sequences of alert creations, status, severity and opening changes (one row at a
time, in bulk, and through save()), moves between patients and deletions, the stored row
is the one computed here in Python from the patient's open alerts. A rebuild restores a
row the trigger did not keep; two connections writing one patient's alerts at once lose
neither; a patient with open alerts deletes cleanly. The caseload's annotations and order
over it are held to the ORM definitions in tests/rehab/test_caseload_order.py.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patients.models import Patient
from rehab.models import Alert, PatientAlertTriage
from rehab.models.alerts import SEVERITY_RANK
from rehab.services.rollup import log_rollups_rebuild
from tests.factories import PatientFactory
from tests.rehab.test_log_rollup import _in_thread, _waiting_on_a_lock

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# Few instants, so that opened_at ties within a tier.
INSTANTS = [NOW - timedelta(hours=h) for h in (1, 5, 30)]
RULES = ["RF-CES-01", "RF-NEU-01", "NR-PAIN-01", "NR-LOG-01"]
SEVERITIES = ["emergency", "urgent", "routine"]
STATUSES = ["open", "open", "acknowledged", "resolved"]

WHO = st.sampled_from(["mine", "theirs"])
PICK = st.integers(0, 50)
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            WHO,
            st.sampled_from(RULES),
            st.sampled_from(SEVERITIES),
            st.sampled_from(STATUSES),
            st.sampled_from(INSTANTS),
        ),
        st.tuples(st.just("status"), PICK, st.sampled_from(STATUSES)),
        st.tuples(st.just("severity"), PICK, st.sampled_from(SEVERITIES)),
        st.tuples(st.just("opened"), PICK, st.sampled_from(INSTANTS)),
        st.tuples(st.just("bulk_status"), WHO, st.sampled_from(STATUSES)),
        st.tuples(st.just("move"), PICK),
        st.tuples(st.just("delete"), PICK),
        st.tuples(st.just("save"), PICK, st.sampled_from(SEVERITIES)),
        st.tuples(st.just("fired"), PICK),
    ),
    max_size=16,
)
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected_triage(patient: Patient) -> tuple[Any, ...] | None:
    """The row's definition: None without an open alert."""
    open_alerts = list(
        Alert.objects.filter(patient=patient, status=Alert.Status.OPEN).values_list(
            "severity", "opened_at"
        )
    )
    if not open_alerts:
        return None
    severity, since = min(open_alerts, key=lambda a: (SEVERITY_RANK[a[0]], a[1]))
    return (
        SEVERITY_RANK[severity],
        since,
        *(sum(1 for sev, _ in open_alerts if sev == wanted) for wanted in SEVERITIES),
    )


def stored_triage(patient: Patient) -> tuple[Any, ...] | None:
    row = PatientAlertTriage.objects.filter(patient=patient).first()
    if row is None:
        return None
    return (row.tier, row.since, row.open_emergency, row.open_urgent, row.open_routine)


def _alert(patient: Patient, rule: str, severity: str, status: str, at: datetime) -> Alert:
    return Alert(
        patient=patient,
        rule=rule,
        rule_version=1,
        severity=severity,
        status=status,
        last_fired_at=at,
        opened_at=at,
    )


def _unresolved_clash(alert: Alert, patient_id: Any, status: str) -> bool:
    # At most one unresolved alert per patient and rule (a partial unique index).
    return status != Alert.Status.RESOLVED and (
        Alert.objects.filter(patient_id=patient_id, rule=alert.rule)
        .exclude(pk=alert.pk)
        .exclude(status=Alert.Status.RESOLVED)
        .exists()
    )


def _apply(patients: dict[str, Patient], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "create":
        _, who, rule, severity, status, at = op
        alert = _alert(patients[who], rule, severity, status, at)
        if not _unresolved_clash(alert, alert.patient_id, status):
            alert.save()
        return
    if kind == "bulk_status":  # as the safety review reopens or closes alerts in bulk
        _, who, status = op
        theirs = Alert.objects.filter(patient=patients[who])
        if status == Alert.Status.RESOLVED or theirs.values("rule").distinct().count() == (
            theirs.count()
        ):
            theirs.update(status=status)
        return
    alerts = list(Alert.objects.filter(patient__in=patients.values()).order_by("created_at", "pk"))
    if not alerts:
        return
    alert = alerts[op[1] % len(alerts)]
    if kind == "status":
        if not _unresolved_clash(alert, alert.patient_id, op[2]):
            Alert.objects.filter(pk=alert.pk).update(status=op[2])
    elif kind == "severity":
        Alert.objects.filter(pk=alert.pk).update(severity=op[2])
    elif kind == "opened":
        Alert.objects.filter(pk=alert.pk).update(opened_at=op[2])
    elif kind == "move":
        to = next(p for p in patients.values() if p.pk != alert.patient_id)
        if not _unresolved_clash(alert, to.pk, alert.status):
            Alert.objects.filter(pk=alert.pk).update(patient=to)
    elif kind == "delete":
        alert.delete()
    elif kind == "save":  # the ORM's save() writes every column
        alert.severity = op[2]
        alert.save()
    elif kind == "fired":  # a column the triage does not read: the trigger does not fire
        Alert.objects.filter(pk=alert.pk).update(last_fired_at=NOW, notify_due=False)


@pytest.mark.django_db
@EXAMPLES
@given(ops=OPS)
def test_the_triage_is_its_definition_after_any_alert_writes(patient, ops):
    Alert.objects.filter(patient=patient).delete()
    patients = {"mine": patient, "theirs": PatientFactory.create(clinic=patient.clinic)}
    for op in ops:
        _apply(patients, op)
        for who in patients.values():
            assert stored_triage(who) == expected_triage(who), op


@pytest.mark.django_db
def test_a_patient_without_open_alerts_has_no_row_and_deletes_cleanly(patient):
    alert = _alert(patient, "RF-CES-01", "urgent", "open", INSTANTS[1])
    alert.save()
    assert stored_triage(patient) == (1, INSTANTS[1], 0, 1, 0)
    _alert(patient, "RF-NEU-01", "urgent", "open", INSTANTS[2]).save()
    assert stored_triage(patient) == (1, INSTANTS[2], 0, 2, 0)  # the longest waiting
    _alert(patient, "NR-PAIN-01", "emergency", "open", INSTANTS[0]).save()
    assert stored_triage(patient) == (0, INSTANTS[0], 1, 2, 0)  # the most severe first
    Alert.objects.filter(patient=patient).update(status=Alert.Status.ACKNOWLEDGED)
    assert stored_triage(patient) is None
    # An acknowledged alert written as such, or deleted, changes nothing.
    _alert(patient, "NR-LOG-01", "routine", "acknowledged", INSTANTS[0]).save()
    alert.delete()
    assert stored_triage(patient) is None

    Alert.objects.filter(patient=patient).update(status=Alert.Status.OPEN)
    assert stored_triage(patient) is not None
    # Django deletes the triage row and the alerts in its own order; the trigger must
    # not leave a row behind that the patient's deletion then trips over.
    with transaction.atomic():
        Patient.objects.filter(pk=patient.pk).delete()
    assert not PatientAlertTriage.objects.exists()


@pytest.mark.django_db
def test_the_rebuild_restores_triage_rows_the_trigger_did_not_keep(patient, clinic):
    other = PatientFactory.create(clinic=clinic)
    elsewhere = PatientFactory.create()
    for who, severity in ((patient, "urgent"), (other, "routine"), (elsewhere, "emergency")):
        _alert(who, "RF-CES-01", severity, "open", INSTANTS[1]).save()
    want = {p.pk: expected_triage(p) for p in (patient, other, elsewhere)}
    # A restore of the alert table alone, or a repair: rows wrong, missing, and a stray.
    PatientAlertTriage.objects.filter(patient=patient).update(tier=2, open_urgent=5)
    PatientAlertTriage.objects.filter(patient=other).delete()
    stray = PatientFactory.create(clinic=clinic)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rehab_patientalerttriage VALUES (%s, 0, %s, 1, 0, 0)", [stray.pk, NOW]
        )
    PatientAlertTriage.objects.filter(patient=elsewhere).update(open_emergency=7)

    assert log_rollups_rebuild(patient_id=patient.pk) == 1
    assert stored_triage(patient) == want[patient.pk]
    assert stored_triage(other) is None  # not in that scope

    call_command("rebuild_log_rollups", "--clinic", str(clinic.pk), stdout=None)
    assert stored_triage(other) == want[other.pk]
    assert stored_triage(stray) is None
    assert stored_triage(elsewhere) != want[elsewhere.pk]  # another clinic: untouched

    assert log_rollups_rebuild(batch=3) == Patient.objects.count() == 4
    assert stored_triage(elsewhere) == want[elsewhere.pk]


def test_the_triages_sql_keeps_the_severity_ranks():
    # The trigger's SQL (a migration: history) wrote these down; a change of the ranks
    # needs a migration that rewrites it (the tests above would fail).
    assert {str(sev): rank for sev, rank in SEVERITY_RANK.items()} == {
        "emergency": 0,
        "urgent": 1,
        "routine": 2,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["create", "resolve", "severity"])
def test_two_connections_writing_one_patients_alerts_lose_no_update(second):
    """A's alert commits while B's write waits on the patient's triage lock; B's trigger
    then reads A's alert too. Without the lock (computing before waiting) B would write
    a row without A's alert: the lost update this guards against."""
    patient = PatientFactory.create()
    earlier = _alert(patient, "NR-LOG-01", "routine", "open", INSTANTS[2])
    earlier.save()
    a_wrote, a_may_commit = threading.Event(), threading.Event()

    def writer_a() -> None:
        with transaction.atomic():
            _alert(patient, "RF-CES-01", "emergency", "open", INSTANTS[0]).save()
            a_wrote.set()
            assert a_may_commit.wait(20)

    def writer_b() -> None:
        with transaction.atomic():
            if second == "create":
                _alert(patient, "RF-NEU-01", "urgent", "open", INSTANTS[1]).save()
            elif second == "resolve":
                Alert.objects.filter(pk=earlier.pk).update(status=Alert.Status.RESOLVED)
            else:
                Alert.objects.filter(pk=earlier.pk).update(severity="urgent")

    a, a_errors = _in_thread(writer_a)
    assert a_wrote.wait(20)
    b, b_errors = _in_thread(writer_b)
    try:
        assert _waiting_on_a_lock(), "the second writer did not queue behind the first"
    finally:
        a_may_commit.set()
        a.join(20)
        b.join(20)
    assert not a_errors, a_errors
    assert not b_errors, b_errors

    row = stored_triage(patient)
    assert row == expected_triage(patient)
    assert row is not None
    assert row[:3] == (0, INSTANTS[0], 1)  # A's alert is in the row B's trigger wrote last
