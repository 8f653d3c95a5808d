"""Feed the daily logs to the programs app's phase-progression rule (programs cannot read
rehab's logs: dependencies point one way)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from programs.models import ProgramAssignment
from programs.services import progression_proposals_generate
from rehab.models import DailyLog

# The rule reads the 7 days before the latest session and the day after it.
PAIN_WINDOW_DAYS = 16


def progression_proposals_run(*, now: datetime | None = None) -> int:
    """Propose phase moves for every patient on a program, grouped by local date.

    Patients are grouped by time zone (a handful of zones, not one pass per patient), and
    their pain comes from one query over the window.
    """
    now = now or timezone.now()
    zones = (
        ProgramAssignment.objects.filter(Q(ended_on__isnull=True) | Q(ended_on__gt=now.date()))
        .of_active_patients()
        .values_list("patient__timezone", "patient_id")
        .distinct()
    )
    by_day: dict[date, list[UUID]] = defaultdict(list)
    for zone, patient_id in zones:
        by_day[now.astimezone(ZoneInfo(zone)).date()].append(patient_id)
    created = 0
    for today, patient_ids in by_day.items():
        pain: dict[UUID, dict[date, int]] = {pid: {} for pid in patient_ids}
        for patient_id, day, value in DailyLog.objects.filter(
            patient_id__in=patient_ids,
            date__gte=today - timedelta(days=PAIN_WINDOW_DAYS),
            date__lte=today,
        ).values_list("patient_id", "date", "pain"):
            pain[patient_id][day] = value
        created += progression_proposals_generate(on=today, daily_pain=pain)
    return created
