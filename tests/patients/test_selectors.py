"""The patient selectors the hot paths use."""

from __future__ import annotations

import pytest
from django.http import Http404

from patients import selectors
from patients.models import User

pytestmark = pytest.mark.django_db


def test_it_gives_a_patient_their_own_record_for_writes(patient, django_assert_num_queries):
    user = User.objects.get(pk=patient.user_id)  # fresh: no relation cached
    # The role probes of `visible_to` (clinician?, patient?) and the record: no care team.
    with django_assert_num_queries(3):
        assert selectors.patient_own_get(user=user) == patient


def test_it_gives_a_clinician_no_own_patient_record(clinician):
    with pytest.raises(Http404):
        selectors.patient_own_get(user=clinician.user)
