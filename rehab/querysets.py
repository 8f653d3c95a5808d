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
