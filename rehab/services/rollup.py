"""Rebuilding the caseload's per-patient rows: the log rollup (rehab.models.PatientLogRollup)
and the alert triage (rehab.models.PatientAlertTriage).

The database keeps both itself, in the same statement as every log or alert write (the
triggers of rehab/migrations/0013_patientlogrollup.py, the log rollup's function as
0015_rollup_backfill_in_place rewrote it, and 0016_caseload_sort_keys.py); a rebuild is
for the writes the triggers did not see: a bulk load with triggers off
(bench/datagen.py's COPY), a restore of a table alone, a repair (docs/deployment.md §
Caseload rollup).
"""

from __future__ import annotations

from uuid import UUID

from django.db import connection, transaction

from patients.models import Patient

# Patients per statement and transaction: each batch holds its patients' rollup locks
# until it commits, so a batch is short and log writes wait for at most one of them.
REBUILD_BATCH = 1000


def log_rollups_rebuild(
    *, clinic_id: UUID | None = None, patient_id: UUID | None = None, batch: int = REBUILD_BATCH
) -> int:
    """Recompute the rollup and alert triage rows of every patient (or of a clinic's, or
    one patient's) from their logs and alerts; patients without logs (without open
    alerts) lose any rollup (triage) row. Returns the patients visited.

    One statement per batch of patients and table, through the triggers' own functions,
    so that a rebuild and the triggers cannot disagree and a rebuild running beside log
    and alert writes takes the same per-patient locks as they do (no update is lost
    either way)."""
    patients = Patient.objects.order_by("pk")
    if clinic_id is not None:
        patients = patients.filter(clinic_id=clinic_id)
    if patient_id is not None:
        patients = patients.filter(pk=patient_id)
    done = 0
    after: UUID | None = None
    while True:
        page = patients if after is None else patients.filter(pk__gt=after)
        ids = list(page.values_list("pk", flat=True)[:batch])
        if not ids:
            return done
        with transaction.atomic(), connection.cursor() as cursor:
            for refresh in ("rehab_log_rollup_refresh", "rehab_alert_triage_refresh"):
                cursor.execute(
                    "SELECT count(*) FROM ("  # noqa: S608 - one of the two names above
                    f" SELECT {refresh}(id) FROM unnest(%s::uuid[]) AS id"
                    " OFFSET 0) AS refreshed",
                    [ids],
                )
        done += len(ids)
        after = ids[-1]
