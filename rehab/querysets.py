from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from patients.querysets import ScopedQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from patients.models import User


class DailyLogQuerySet(ScopedQuerySet):
    pass


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
