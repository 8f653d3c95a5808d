"""Signed media links: what they serve, byte ranges, expiry, tampering, removal."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from programs.media import links
from programs.media.selectors import media_view
from programs.media.services import media_create, media_delete
from tests.programs.factories import ExerciseFactory
from tests.programs.media_support import mp4, png

pytestmark = pytest.mark.django_db


@pytest.fixture
def video(media_root):
    return media_create(
        exercise=ExerciseFactory.create(clinic=None),
        clinic=None,
        upload=BytesIO(mp4(payload_size=10_000)),
        poster=BytesIO(png()),
        actor=None,
    )


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_it_serves_the_whole_file_privately_with_ranges_offered(video, media_root):
    response = Client().get(media_view(video).url)
    assert response.status_code == 200
    content = (media_root / video.file_name).read_bytes()
    assert _body(response) == content
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(content))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{video.sha256}"'
    cache = response["Cache-Control"]
    assert cache.startswith("private, max-age=")
    assert 0 < int(cache.rsplit("=", 1)[1]) <= 900
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-256", -256, None)],
)
def test_it_answers_a_range_with_206_and_exactly_those_bytes(video, media_root, header, start, end):
    content = (media_root / video.file_name).read_bytes()
    expected = content[start : (end + 1 if end is not None else None)]
    response = Client().get(media_view(video).url, HTTP_RANGE=header)
    assert response.status_code == 206
    assert _body(response) == expected
    assert response["Content-Length"] == str(len(expected))
    first = start if start >= 0 else len(content) + start
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(content)}"


def test_it_answers_416_to_a_range_past_the_end(video, media_root):
    size = (media_root / video.file_name).stat().st_size
    response = Client().get(media_view(video).url, HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


def test_it_sends_the_whole_file_when_if_range_names_another_version(video):
    response = Client().get(
        media_view(video).url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"old-version"'
    )
    assert response.status_code == 200
    same = Client().get(
        media_view(video).url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=f'"{video.sha256}"'
    )
    assert same.status_code == 206


def test_it_answers_304_when_the_phone_holds_this_file(video):
    response = Client().get(media_view(video).url, HTTP_IF_NONE_MATCH=f'"{video.sha256}"')
    assert response.status_code == 304


def test_it_serves_the_poster_as_a_jpeg(video, media_root):
    view = media_view(video)
    assert view.poster_url is not None
    response = Client().get(view.poster_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert _body(response) == (media_root / video.poster_name).read_bytes()


def test_a_link_stops_working_when_it_expires(video, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    view = media_view(video)
    time_machine.shift(
        timedelta(seconds=int((view.expires_at - timezone.now()).total_seconds()) - 1)
    )
    assert Client().get(view.url).status_code == 200
    time_machine.shift(timedelta(seconds=2))
    response = Client().get(view.url)
    assert response.status_code == 400
    assert response.json()["code"] == "media_link_invalid"


def test_a_link_lives_at_least_two_thirds_of_its_max_age(video, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    with override_settings(MEDIA_URL_MAX_AGE=900):
        view = media_view(video)
        left = (view.expires_at - timezone.now()).total_seconds()
        assert 600 <= left <= 900
        # The same link for a while: the plan keeps its ETag, the phone its cached image.
        time_machine.shift(timedelta(seconds=1))
        assert media_view(video).url == view.url


def test_a_tampered_link_is_refused(video):
    url = media_view(video).url
    token = url.rstrip("/").rsplit("/", 1)[1]
    other = links.link(media_id=video.pk, variant=links.POSTER).path
    forged = url.replace(token, token.replace(":f:", ":p:"))
    assert forged != other
    assert Client().get(forged).status_code == 400
    assert Client().get("/api/v1/media/garbage/").status_code == 400


def test_a_link_to_removed_media_is_a_404(video, django_capture_on_commit_callbacks):
    url = media_view(video).url
    with django_capture_on_commit_callbacks(execute=True):
        media_delete(media=video, actor=None)
    assert Client().get(url).status_code == 404


def test_an_image_has_no_poster_link(media_root):
    image = media_create(
        exercise=ExerciseFactory.create(clinic=None), clinic=None, upload=BytesIO(png()), actor=None
    )
    assert media_view(image).poster_url is None
    poster = links.link(media_id=image.pk, variant=links.POSTER).path
    assert Client().get(poster).status_code == 404


def test_it_answers_whatever_the_player_accepts(video):
    response = Client().get(media_view(video).url, HTTP_ACCEPT="video/mp4")
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"


def test_a_dashboard_session_does_not_put_media_tokens_in_the_audit_trail(
    video, clinician, django_capture_on_commit_callbacks
):
    from patients.models import AuditEvent

    url = media_view(video).url
    with django_capture_on_commit_callbacks(execute=True):
        media_delete(media=video, actor=None)
    client = Client()
    client.force_login(clinician.user)
    assert client.get(url).status_code == 404
    assert not AuditEvent.objects.filter(action="denied").exists()


def test_files_written_for_an_upload_that_fails_later_are_removed(media_root, monkeypatch):
    from programs.media import services
    from programs.models import ExerciseMedia
    from tests.programs.media_support import stored_files

    def broken_audit(**fields):
        raise RuntimeError("the audit trail is down")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    with pytest.raises(RuntimeError):
        media_create(
            exercise=ExerciseFactory.create(clinic=None),
            clinic=None,
            upload=BytesIO(mp4()),
            poster=BytesIO(png()),
            actor=None,
        )
    assert not ExerciseMedia.objects.exists()
    assert stored_files(media_root) == []
