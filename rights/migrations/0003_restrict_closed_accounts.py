"""Marks as restricted the patients whose erasure was approved before the column existed
(restricted under a hold, or already pseudonymised): docs/data-rights.md § Restriction."""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import Q


def restrict(apps: Any, schema_editor: Any) -> None:
    Patient = apps.get_model("patients", "Patient")
    Erasure = apps.get_model("rights", "Erasure")
    ErasureRequest = apps.get_model("rights", "ErasureRequest")
    closed = Q(pk__in=Erasure.objects.values("patient_id")) | Q(
        pk__in=ErasureRequest.objects.filter(status__in=("restricted", "erased")).values(
            "patient_id"
        )
    )
    for patient in Patient.objects.filter(closed, restricted_at__isnull=True):
        request = (
            ErasureRequest.objects.filter(patient_id=patient.pk, decided_at__isnull=False)
            .order_by("-decided_at")
            .first()
        )
        erasure = Erasure.objects.filter(patient_id=patient.pk).first()
        when = request.decided_at if request else erasure.erased_at
        Patient.objects.filter(pk=patient.pk).update(restricted_at=when)


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0009_patient_restricted_at"),
        ("rights", "0002_erasure_and_retention"),
    ]

    operations = [migrations.RunPython(restrict, migrations.RunPython.noop)]
