"""The plan endpoint lists each exercise's media: signed links, posters, kinds, types; a
patient gets only the media of their own plan and of their own clinic."""

from __future__ import annotations

from io import BytesIO

import pytest
from django.test import Client

from patients.models import AuditEvent
from programs.media.services import media_create
from tests.programs.conftest import START, exercises_of
from tests.programs.media_support import mp4, png

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


PLAN = "/api/v1/me/plan/"


def _plan(client):
    response = client.get(PLAN, {"date": START.isoformat()})
    assert response.status_code == 200, response.content
    return response


def _add(exercise, clinic, content: bytes, poster: bytes | None = None, alt: str = ""):
    return media_create(
        exercise=exercise,
        clinic=clinic,
        upload=BytesIO(content),
        poster=BytesIO(poster) if poster else None,
        alt_text=alt,
        actor=None,
    )


@pytest.fixture
def library(assignment):
    """The library entries of the plan's first two exercises (shared ones)."""
    return [item.exercise for item in exercises_of(assignment, 1)]


def test_each_exercise_lists_its_media_with_signed_links(
    patient_client, library, clinic, media_root
):
    first, second = library
    video = _add(first, None, mp4(), poster=png(), alt="Lift the hips")
    image = _add(first, clinic, png(size=(30, 20)), alt="Start position")
    body = _plan(patient_client).json()
    by_name = {item["name"]: item for item in body["exercises"]}
    media = by_name[first.name]["media"]
    assert [m["id"] for m in media] == [str(video.pk), str(image.pk)]
    shown_video, shown_image = media
    assert shown_video["kind"] == "video"
    assert shown_video["content_type"] == "video/mp4"
    assert shown_video["url"].startswith("http://testserver/api/v1/media/")
    assert shown_video["poster_url"].startswith("http://testserver/api/v1/media/")
    assert shown_video["alt_text"] == "Lift the hips"
    assert shown_image["kind"] == "image"
    assert shown_image["poster_url"] is None
    assert (shown_image["width"], shown_image["height"]) == (30, 20)
    assert shown_image["expires_at"]
    # `media_url` keeps working: the first image's link.
    assert by_name[first.name]["media_url"] == shown_image["url"]
    assert by_name[second.name]["media"] == []
    assert by_name[second.name]["media_url"] == ""
    # The links work without the API token.
    fetched = Client().get(shown_image["url"])
    assert fetched.status_code == 200
    assert _body(fetched) == (media_root / image.file_name).read_bytes()


def test_a_patient_never_gets_another_clinics_media(
    patient_client, library, other_clinic, media_root
):
    _add(library[0], other_clinic, png())
    body = _plan(patient_client).json()
    assert all(item["media"] == [] for item in body["exercises"])


def test_a_patient_gets_no_media_of_exercises_outside_their_plan(
    patient_client, other_patient_client, library, clinic, media_root
):
    mine = _add(library[0], clinic, png())
    assert str(mine.pk) in _plan(patient_client).content.decode()
    # Another patient (no program) sees no exercise and so no media.
    other = other_patient_client.get(PLAN).json()
    assert other["exercises"] == []
    assert str(mine.pk) not in str(other)


def test_the_plan_keeps_its_etag_while_its_links_are_the_same(
    patient_client, library, media_root, time_machine
):
    time_machine.move_to("2026-03-02T12:00:00Z", tick=False)
    _add(library[0], None, png())
    first = _plan(patient_client)
    again = patient_client.get(PLAN, {"date": START.isoformat()}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_reading_the_plan_is_audited(patient_client, patient, library, media_root):
    _add(library[0], None, png())
    _plan(patient_client)
    assert AuditEvent.objects.filter(
        object_type="program_plan", patient_id=patient.pk, action="read"
    ).exists()


def test_the_clinicians_library_lists_media_their_patients_see(
    clinician_client, other_clinic_clinician_client, clinic, media_root
):
    from tests.programs.factories import ExerciseFactory

    exercise = ExerciseFactory.create(clinic=None, name="A shared exercise")
    shared = _add(exercise, None, png())
    own = _add(exercise, clinic, png())

    def media_ids(client):
        body = client.get("/api/v1/clinician/exercises/", {"page_size": 100}).json()
        (item,) = [e for e in body["results"] if e["id"] == str(exercise.pk)]
        return [m["id"] for m in item["media"]]

    assert media_ids(clinician_client) == [str(shared.pk), str(own.pk)]
    assert media_ids(other_clinic_clinician_client) == [str(shared.pk)]
