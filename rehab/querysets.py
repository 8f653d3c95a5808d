from __future__ import annotations

from patients.querysets import ScopedQuerySet


class DailyLogQuerySet(ScopedQuerySet):
    pass
