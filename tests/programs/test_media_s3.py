"""Exercise media on an S3-compatible store: django-storages against moto's S3 server,
a real HTTP server speaking the S3 protocol on localhost. Upload through the service,
check the object in the bucket, then fetch it the way a phone does: the signed link
redirects to a presigned URL of the store, which serves the bytes and ranges."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import boto3
import pytest
from django.conf import settings
from django.test import Client, override_settings
from moto.server import ThreadedMotoServer

from programs.media.selectors import media_view
from programs.media.services import media_create, media_delete
from tests.programs.factories import ExerciseFactory
from tests.programs.media_support import mp4, png

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


BUCKET = "rehab-media-test"
CREDENTIALS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    storages = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "addressing_style": "path",
                "signature_version": "s3v4",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
                "location": "media",
            },
        },
    }
    with override_settings(STORAGES=storages, MEDIA_S3_BUCKET=BUCKET, MEDIA_S3_REDIRECT=True):
        yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _get(url: str, **headers: str) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  (a localhost URL)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, response.read(), response.headers


def test_it_round_trips_a_video_through_the_store(s3, django_capture_on_commit_callbacks):
    content = mp4(payload_size=50_000)
    media = media_create(
        exercise=ExerciseFactory.create(clinic=None),
        clinic=None,
        upload=BytesIO(content),
        poster=BytesIO(png()),
        actor=None,
    )
    key = f"media/{media.file_name}"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(content)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == content
    assert s3.head_object(Bucket=BUCKET, Key=f"media/{media.poster_name}")["ContentLength"] > 0

    # The phone follows the signed link to the store's presigned URL.
    response = Client().get(media_view(media).url)
    assert response.status_code == 302
    presigned = response["Location"]
    assert presigned.startswith(s3.meta.endpoint_url)
    assert "X-Amz-Signature=" in presigned
    status, body, headers = _get(presigned)
    assert status == 200
    assert body == content
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Cache-Control"].startswith("private, max-age=")
    status, part, headers = _get(presigned, Range="bytes=100-199")
    assert status == 206
    assert part == content[100:200]

    with django_capture_on_commit_callbacks(execute=True):
        media_delete(media=media, actor=None)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_it_can_stream_from_the_store_through_the_service(s3):
    content = mp4(payload_size=20_000)
    media = media_create(
        exercise=ExerciseFactory.create(clinic=None),
        clinic=None,
        upload=BytesIO(content),
        actor=None,
    )
    with override_settings(MEDIA_S3_REDIRECT=False):
        response = Client().get(media_view(media).url, HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert _body(response) == content[10:20]
    assert response["Content-Range"] == f"bytes 10-19/{len(content)}"


def test_a_refused_upload_leaves_nothing_in_the_bucket(s3):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        media_create(
            exercise=ExerciseFactory.create(clinic=None),
            clinic=None,
            upload=BytesIO(mp4()),
            poster=BytesIO(b"<?php ?>"),
            actor=None,
        )
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
