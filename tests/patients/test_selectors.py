"""The patient selectors the hot paths use."""

from __future__ import annotations

import pytest
from django.http import Http404

from patients import selectors
from patients.models import User

pytestmark = pytest.mark.django_db


def test_it_gives_a_patient_their_own_record_for_writes(patient, django_assert_num_queries):
    user = User.objects.get(pk=patient.user_id)  # fresh: no relation cached
    with django_assert_num_queries(1):
        assert selectors.patient_own_get(user=user) == patient


def test_it_reads_no_row_when_the_sign_in_loaded_the_patient(patient, django_assert_num_queries):
    user = User.objects.select_related("patient").get(pk=patient.user_id)
    with django_assert_num_queries(0):
        assert selectors.patient_own_get(user=user) == patient


def test_it_gives_a_clinician_no_own_patient_record(clinician):
    with pytest.raises(Http404):
        selectors.patient_own_get(user=clinician.user)
