from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import models
from django.db.models import OuterRef, Subquery

from patients.querysets import ScopedQuerySet

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from django.contrib.auth.models import AnonymousUser

    from patients.models import User
    from rehab.models import DailyLog


class DailyLogQuerySet(ScopedQuerySet):
    def by_id(self, log_id: UUID | str) -> DailyLogQuerySet:
        """The log `log_id`, read from its month's partition alone.

        The log table is partitioned by month of `date` (docs/clinical-record.md § Where
        the daily logs are stored): `WHERE id = X` alone is planned over every partition,
        a cost that grows by one partition a month. The claimed-ids table keeps each
        log's date beside its id (kept by the log table's triggers), so one probe of its
        primary key gives the date, and `id = X AND date = D`, both constants, is pruned
        to one partition when it is planned. An id claimed by no log is no log: empty,
        with no second query.

        The probe runs now, the read when the queryset is evaluated: use it at once. An
        edit moving the log to another month in between makes the read miss it (a row
        read on its old month); `get_by_id` reads again then.
        """
        day = self.date_of(log_id)
        if day is None:
            return self.none()
        return self.filter(pk=log_id, date=day)

    def get_by_id(self, log_id: UUID | str) -> DailyLog:
        """`by_id(log_id).get()`, read again if the log changed month between the probe
        and the read (a concurrent edit of its date): DoesNotExist only if no log has
        the id, or the one that has it is not in this queryset."""
        seen: date | None = None
        for _ in range(3):
            day = self.date_of(log_id)
            if day is None or day == seen:
                raise self.model.DoesNotExist(f"No {self.model.__name__} with id {log_id}.")
            try:
                log: DailyLog = self.filter(pk=log_id, date=day).get()
            except self.model.DoesNotExist:
                seen = day
            else:
                return log
        # Moved on every read: an unpruned read, which finds the row wherever it is.
        found: DailyLog = self.get(pk=log_id)
        return found

    def by_dated_ids(self, dates: Mapping[UUID, date | None]) -> dict[UUID, DailyLog]:
        """The logs of `dates` ({log id: its date, as the claimed ids give it: `log_date()`
        annotated on the rows pointing at them}), by id, read from their months'
        partitions alone: one query, `id IN (...) AND date IN (...)`, both constants,
        pruned when it is planned, whatever the number of logs.

        A log that is not found there (its date moved between the annotation and this
        read, or a date not known) is read by `get_by_id`; an id no log has is left out."""
        known = {log_id: day for log_id, day in dates.items() if day is not None}
        found: dict[UUID, DailyLog] = {}
        if known:
            found = {log.pk: log for log in self.filter(pk__in=known, date__in=set(known.values()))}
        for log_id in dates.keys() - found.keys():
            try:
                found[log_id] = self.get_by_id(log_id)
            except self.model.DoesNotExist:
                continue
        return found

    def date_of(self, log_id: UUID | str) -> date | None:
        """The date of the log `log_id`, from the claimed ids' primary key; None if no
        log has it."""
        # By name: the models module imports this one.
        claims = apps.get_model("rehab", "DailyLogId")
        claim = claims.objects.using(self.db).filter(pk=log_id).values_list("date").first()
        if claim is None:
            return None
        day: date | None = claim[0]
        if day is None:
            # Only while migration 0014 fills the dates in: the log's own, unpruned.
            day = (
                self.model._default_manager.using(self.db)
                .filter(pk=log_id)
                .values_list("date", flat=True)
                .first()
            )
        return day


def log_date(field: str = "log_id") -> Subquery:
    """The date of the log that the foreign key `field` (a log's id) points at, read from
    the claimed ids (`DailyLogId`, kept by the log table's triggers, moved with an
    edit of the date): one probe of their primary key per row, and no partition of the
    log table planned or read. NULL where `field` is NULL.

    Annotated on alerts, occurrences and safety submissions, it is what the pages that
    list them show of their log (its date), and what `by_dated_ids` needs to read the
    logs themselves from their months alone (docs/clinical-record.md § Where the daily
    logs are stored)."""
    # By name: the models module imports this one.
    claims = apps.get_model("rehab", "DailyLogId")
    return Subquery(claims.objects.filter(pk=OuterRef(field)).values("date")[:1])


class AlertQuerySet(ScopedQuerySet):
    def unresolved(self) -> AlertQuerySet:
        return self.exclude(status="resolved")


class NotificationQuerySet(models.QuerySet[Any]):
    def visible_to(self, user: User | AnonymousUser) -> NotificationQuerySet:
        """A clinician's own notifications; nobody else's."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(clinician__user=user)


# --- clinical record ---
# (Its imports stay inside this section so that the daily-log half of the file is untouched.)
from datetime import date, datetime  # noqa: E402


class ClinicalRecordQuerySet(ScopedQuerySet):
    """Interventions, provocative tests, imaging, diagnoses, questionnaire responses."""


class AssessedMarkQuerySet(ScopedQuerySet):
    def unrevoked(self) -> AssessedMarkQuerySet:
        return self.filter(revoked_at__isnull=True)

    def holding_on(self, day: date) -> AssessedMarkQuerySet:
        """Marks in force on `day`: not revoked, `until` not passed (docs/clinical-record.md)."""
        return self.filter(revoked_at__isnull=True, until__gte=day)


class QuestionnaireDueQuerySet(ScopedQuerySet):
    def waiting(self) -> QuestionnaireDueQuerySet:
        """Neither answered nor stamped expired (the sweeper may not have run yet)."""
        return self.filter(response__isnull=True, expired_at__isnull=True)

    def open_at(self, now: datetime) -> QuestionnaireDueQuerySet:
        # `expires_at` is checked as well as `expired_at`: the app never offers a window
        # that has closed, whether or not the sweeper has been by.
        return self.waiting().filter(due_from__lte=now, expires_at__gt=now)

    def overdue(self, now: datetime) -> QuestionnaireDueQuerySet:
        return self.waiting().filter(expires_at__lte=now)


# --- end clinical record ---
