from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from programs.models import ProgressionProposal
from rehab.demo import seed_demo
from rehab.services.progression import progression_proposals_run

pytestmark = pytest.mark.django_db


def test_it_feeds_daily_logs_to_the_progression_rule_and_is_idempotent():
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        seed_demo()
        ProgressionProposal.objects.all().delete()
        first = progression_proposals_run()
        assert first == ProgressionProposal.objects.filter(status="pending").count()
        assert first >= 1
        assert progression_proposals_run() == 0
