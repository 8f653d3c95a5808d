"""Uploading exercise media in the dashboard and the admin: checks, storage, audit, scope."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from patients.models import AuditEvent
from programs.media.services import media_create
from programs.models import ExerciseMedia
from tests.factories import UserFactory
from tests.programs.factories import ExerciseFactory
from tests.programs.media_support import (
    PHP,
    jpeg_with_gps,
    mp4,
    png,
    png_bomb,
    stored_files,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(clinician) -> Client:
    client = Client()
    client.force_login(clinician.user)
    return client


@pytest.fixture
def other_web(other_clinic_clinician) -> Client:
    client = Client()
    client.force_login(other_clinic_clinician.user)
    return client


@pytest.fixture
def shared_exercise():
    return ExerciseFactory.create(clinic=None)


@pytest.fixture
def own_exercise(clinic):
    return ExerciseFactory.create(clinic=clinic)


def _url(exercise) -> str:
    return reverse("dashboard:exercise-media", args=[exercise.pk])


def _upload(client: Client, exercise, name: str, content: bytes, **extra):
    data = {"file": SimpleUploadedFile(name, content, content_type="image/jpeg"), **extra}
    return client.post(_url(exercise), data)


def test_it_stores_an_uploaded_image_without_its_exif_and_audits_it(
    web, clinician, clinic, shared_exercise, media_root
):
    response = _upload(web, shared_exercise, "knee.jpg", jpeg_with_gps(), alt_text="Start position")
    assert response.status_code == 302
    media = ExerciseMedia.objects.get()
    assert (media.clinic_id, media.kind, media.content_type) == (clinic.pk, "image", "image/jpeg")
    assert media.alt_text == "Start position"
    assert media.uploaded_by == clinician.user
    (path,) = stored_files(media_root)
    content = path.read_bytes()
    assert b"Secret Camera" not in content
    assert len(content) == media.size_bytes
    assert path.name == f"{media.pk}.jpg"  # the server's name, never the uploader's
    event = AuditEvent.objects.get(object_type="exercise_media", action="create")
    assert event.actor == clinician.user
    assert event.object_id == str(media.pk)
    assert event.changes["sha256"] == media.sha256
    assert event.patient_id is None
    assert event.path == _url(shared_exercise)


def test_it_refuses_a_php_file_named_jpg_and_stores_nothing(web, shared_exercise, media_root):
    response = _upload(web, shared_exercise, "photo.jpg", PHP)
    assert response.status_code == 400
    assert b"not a JPEG, PNG or WebP image" in response.content
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []
    assert not AuditEvent.objects.filter(object_type="exercise_media").exists()


def test_it_refuses_a_decompression_bomb_with_a_400(web, shared_exercise, media_root):
    response = _upload(web, shared_exercise, "bomb.png", png_bomb())
    assert response.status_code == 400
    assert b"million pixels" in response.content
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []


def test_it_refuses_an_oversized_video_and_stores_nothing(web, shared_exercise, media_root):
    with override_settings(MEDIA_VIDEO_MAX_BYTES=2000):
        response = _upload(web, shared_exercise, "demo.mp4", mp4(payload_size=3000))
    assert response.status_code == 400
    assert b"Videos may be at most" in response.content
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []


def test_it_answers_413_to_a_body_past_the_upload_limit_before_reading_it(
    web, shared_exercise, media_root
):
    with override_settings(
        MEDIA_VIDEO_MAX_BYTES=1000, MEDIA_IMAGE_MAX_BYTES=1000, DATA_UPLOAD_MAX_MEMORY_SIZE=1000
    ):
        response = _upload(web, shared_exercise, "demo.mp4", mp4(payload_size=3 * 1024 * 1024))
    assert response.status_code == 413
    assert not ExerciseMedia.objects.exists()


def test_it_takes_a_body_over_the_general_limit_on_the_upload_page(
    web, shared_exercise, media_root
):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        response = _upload(web, shared_exercise, "demo.mp4", mp4(payload_size=5000))
    assert response.status_code == 302
    assert ExerciseMedia.objects.get().content_type == "video/mp4"


def test_it_stores_a_video_with_its_poster(web, shared_exercise, media_root):
    video = mp4()
    response = web.post(
        _url(shared_exercise),
        {
            "file": SimpleUploadedFile("v.mp4", video, content_type="video/mp4"),
            "poster": SimpleUploadedFile("p.png", png(), content_type="image/png"),
        },
    )
    assert response.status_code == 302
    media = ExerciseMedia.objects.get()
    assert media.kind == "video"
    assert media.poster_name.endswith("-poster.jpg")
    assert (media_root / media.file_name).read_bytes() == video


def test_it_refuses_a_poster_that_is_not_an_image(web, shared_exercise, media_root):
    response = web.post(
        _url(shared_exercise),
        {
            "file": SimpleUploadedFile("v.mp4", mp4(), content_type="video/mp4"),
            "poster": SimpleUploadedFile("p.jpg", PHP, content_type="image/jpeg"),
        },
    )
    assert response.status_code == 400
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []


def test_the_page_lists_the_media_with_signed_links(web, shared_exercise, clinic, media_root):
    media = _create(shared_exercise, clinic)
    response = web.get(_url(shared_exercise))
    assert response.status_code == 200
    assert str(media.pk).encode() in response.content
    assert b"/api/v1/media/" in response.content


def test_the_library_lists_exercises_with_their_media_count(
    web, shared_exercise, clinic, media_root
):
    _create(shared_exercise, clinic)
    response = web.get(reverse("dashboard:exercises"))
    assert response.status_code == 200
    row = next(r for r in response.context["rows"] if r["exercise"] == shared_exercise)
    assert row["media_count"] == 1


def _create(exercise, clinic, content: bytes | None = None) -> ExerciseMedia:
    from io import BytesIO

    return media_create(
        exercise=exercise, clinic=clinic, upload=BytesIO(content or png()), actor=None
    )


def test_it_moves_and_removes_the_clinics_own_media_with_audit(
    web, shared_exercise, clinic, media_root, django_capture_on_commit_callbacks
):
    first, second = _create(shared_exercise, clinic), _create(shared_exercise, clinic)
    move = reverse("dashboard:exercise-media-move", args=[shared_exercise.pk, second.pk])
    assert web.post(move, {"direction": "up"}).status_code == 302
    order = list(ExerciseMedia.objects.order_by("position").values_list("pk", flat=True))
    assert order == [second.pk, first.pk]
    delete = reverse("dashboard:exercise-media-delete", args=[shared_exercise.pk, first.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert web.post(delete).status_code == 302
    assert list(ExerciseMedia.objects.values_list("pk", flat=True)) == [second.pk]
    assert not (media_root / first.file_name).exists()

    def actions(media):
        return set(
            AuditEvent.objects.filter(
                object_type="exercise_media", object_id=str(media.pk)
            ).values_list("action", flat=True)
        )

    assert actions(first) == {"create", "delete"}
    assert actions(second) == {"create", "update"}


# --------------------------------------------------------------------------- scope


def test_another_clinic_cannot_see_or_upload_to_a_clinics_own_exercise(
    other_web, own_exercise, media_root
):
    assert other_web.get(_url(own_exercise)).status_code == 404
    response = _upload(other_web, own_exercise, "a.png", png())
    assert response.status_code == 404
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []


def test_another_clinic_does_not_see_a_clinics_media_of_a_shared_exercise(
    other_web, shared_exercise, clinic, media_root
):
    media = _create(shared_exercise, clinic)
    page = other_web.get(_url(shared_exercise))
    assert page.status_code == 200
    assert str(media.pk).encode() not in page.content
    for name in ("exercise-media-delete", "exercise-media-move"):
        url = reverse(f"dashboard:{name}", args=[shared_exercise.pk, media.pk])
        assert other_web.post(url, {"direction": "up"}).status_code == 404
    assert ExerciseMedia.objects.filter(pk=media.pk).exists()


def test_a_clinic_cannot_remove_shared_media(web, shared_exercise, media_root):
    shared = _create(shared_exercise, None)
    url = reverse("dashboard:exercise-media-delete", args=[shared_exercise.pk, shared.pk])
    assert web.post(url).status_code == 404
    assert ExerciseMedia.objects.filter(pk=shared.pk).exists()


def test_a_patient_gets_no_dashboard_page(patient, shared_exercise, media_root):
    client = Client()
    client.force_login(patient.user)
    assert client.get(_url(shared_exercise)).status_code == 403


# --------------------------------------------------------------------------- admin


@pytest.fixture
def operator_web() -> Client:
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def test_an_operator_adds_shared_media_in_the_admin_through_the_same_checks(
    operator_web, shared_exercise, media_root, django_capture_on_commit_callbacks
):
    url = reverse("admin:programs_exercisemedia_add")
    bad = operator_web.post(
        url,
        {"exercise": shared_exercise.pk, "upload": SimpleUploadedFile("x.jpg", PHP)},
    )
    assert bad.status_code == 200
    assert b"not a JPEG, PNG or WebP image" in bad.content
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []

    good = operator_web.post(
        url,
        {
            "exercise": shared_exercise.pk,
            "upload": SimpleUploadedFile("x.jpg", jpeg_with_gps()),
            "alt_text": "Lying on the back",
        },
    )
    assert good.status_code == 302
    media = ExerciseMedia.objects.get()
    assert media.clinic_id is None
    assert media.alt_text == "Lying on the back"
    assert AuditEvent.objects.filter(
        object_type="exercise_media", action="create", object_id=str(media.pk)
    ).exists()
    change = operator_web.get(reverse("admin:programs_exercisemedia_change", args=[media.pk]))
    assert change.status_code == 200
    assert b"/api/v1/media/" in change.content

    delete = reverse("admin:programs_exercisemedia_delete", args=[media.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert operator_web.post(delete, {"post": "yes"}).status_code == 302
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []
