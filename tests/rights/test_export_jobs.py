from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from patients.models import AuditEvent
from rights import services, tasks
from rights.models import ExportJob

pytestmark = pytest.mark.django_db


def _create(client, url: str, django_capture_on_commit_callbacks, fmt: str = "fhir"):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, {"format": fmt}, format="json")
    return response, callbacks


def test_it_builds_an_export_in_the_background_and_hands_a_signed_link(
    patient_client, anon_client, record, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued: list[str] = []
    monkeypatch.setattr(tasks.export_job_build_task, "delay", enqueued.append)
    response, callbacks = _create(
        patient_client, "/api/v1/me/exports/", django_capture_on_commit_callbacks
    )
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "pending"
    assert job["download_url"] is None
    assert len(callbacks) == 1
    callbacks[0]()
    assert enqueued == [job["id"]]

    assert services.export_job_build(job_id=job["id"]) == "ready"
    assert services.export_job_build(job_id=job["id"]) == "skipped"  # a second delivery

    polled = patient_client.get(f"/api/v1/me/exports/{job['id']}/").json()
    assert polled["status"] == "ready"
    assert polled["progress"] == 100
    download = anon_client.get(polled["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/fhir+json"
    bundle = json.loads(b"".join(download.streaming_content))
    assert bundle["resourceType"] == "Bundle"
    assert AuditEvent.objects.filter(
        patient=record, object_type="export", changes__how="download"
    ).exists()


def test_the_signed_link_expires(patient_client, anon_client, record):
    job = ExportJob.objects.create(patient=record, requested_by=record.user, format="json")
    services.export_job_build(job_id=job.pk)
    url = patient_client.get(f"/api/v1/me/exports/{job.pk}/").json()["download_url"]
    from django.conf import settings

    later = timezone.now() + timedelta(seconds=settings.EXPORT_LINK_MAX_AGE + 5)
    with time_machine.travel(later, tick=False):
        response = anon_client.get(url)
    assert response.status_code == 400
    assert response.json()["code"] == "export_link_invalid"


def test_a_tampered_link_is_refused(patient_client, anon_client, record):
    job = ExportJob.objects.create(patient=record, requested_by=record.user, format="json")
    services.export_job_build(job_id=job.pk)
    url = patient_client.get(f"/api/v1/me/exports/{job.pk}/").json()["download_url"]
    response = anon_client.get(url.replace(str(job.pk)[:8], "00000000"))
    assert response.status_code == 400


def test_it_hides_another_patients_job(patient_client, other_patient_client, record):
    job = ExportJob.objects.create(patient=record, requested_by=record.user, format="csv")
    assert other_patient_client.get(f"/api/v1/me/exports/{job.pk}/").status_code == 404
    assert patient_client.get(f"/api/v1/me/exports/{job.pk}/").status_code == 200


def test_it_hides_another_clinics_patient_and_job(
    clinician_client, other_clinic_clinician_client, record, django_capture_on_commit_callbacks
):
    response, _ = _create(
        clinician_client,
        f"/api/v1/clinician/patients/{record.pk}/exports/",
        django_capture_on_commit_callbacks,
    )
    job_id = response.json()["id"]
    url = f"/api/v1/clinician/patients/{record.pk}/exports/{job_id}/"
    assert clinician_client.get(url).status_code == 200
    assert other_clinic_clinician_client.get(url).status_code == 404
    response, callbacks = _create(
        other_clinic_clinician_client,
        f"/api/v1/clinician/patients/{record.pk}/exports/",
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 404
    assert not callbacks
    assert ExportJob.objects.count() == 1


def test_it_refuses_an_unknown_format_and_creates_nothing(
    patient_client, record, django_capture_on_commit_callbacks
):
    response, callbacks = _create(
        patient_client, "/api/v1/me/exports/", django_capture_on_commit_callbacks, fmt="xml"
    )
    assert response.status_code == 400
    assert "format" in response.json()
    assert not callbacks
    assert not ExportJob.objects.exists()


def test_a_job_builds_nothing_for_a_requester_out_of_scope(record, other_clinic_clinician):
    job = ExportJob.objects.create(
        patient=record, requested_by=other_clinic_clinician.user, format="json"
    )
    assert services.export_job_build(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED
    assert job.file_name == ""


def test_the_sweeper_re_enqueues_lost_jobs_and_removes_old_files(
    record, monkeypatch, export_dir: Path
):
    enqueued: list[str] = []
    monkeypatch.setattr(tasks.export_job_build_task, "delay", enqueued.append)
    lost = ExportJob.objects.create(patient=record, requested_by=record.user, format="csv")
    ExportJob.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    hopeless = ExportJob.objects.create(
        patient=record, requested_by=record.user, format="csv", attempts=3
    )
    ExportJob.objects.filter(pk=hopeless.pk).update(created_at=timezone.now() - timedelta(hours=1))
    fresh = ExportJob.objects.create(patient=record, requested_by=record.user, format="csv")
    done = ExportJob.objects.create(patient=record, requested_by=record.user, format="json")
    services.export_job_build(job_id=done.pk)
    done.refresh_from_db()
    assert (export_dir / done.file_name).exists()

    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        services.export_jobs_sweep()

    assert str(lost.pk) in enqueued
    assert str(fresh.pk) in enqueued  # two days later, it is lost too
    hopeless.refresh_from_db()
    assert hopeless.status == ExportJob.Status.FAILED
    done.refresh_from_db()
    assert done.status == ExportJob.Status.EXPIRED
    assert not list(export_dir.iterdir())


def test_a_link_to_a_removed_file_says_it_is_gone(patient_client, anon_client, record):
    job = ExportJob.objects.create(patient=record, requested_by=record.user, format="json")
    services.export_job_build(job_id=job.pk)
    url = patient_client.get(f"/api/v1/me/exports/{job.pk}/").json()["download_url"]
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = anon_client.get(url)
    assert response.status_code == 400
    assert response.json()["code"] == "export_gone"
