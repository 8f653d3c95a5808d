from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models

from patients.models import User


class DeviceQuerySet(models.QuerySet[Any]):
    def visible_to(self, user: User | AnonymousUser) -> DeviceQuerySet:
        """A user's own devices only: nobody, a clinician or an operator included, sees
        another's push addresses through the API."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)
