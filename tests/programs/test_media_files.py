"""What an upload is, decided from its bytes (programs/media/files.py), and byte ranges
(programs/media/ranges.py). No database."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from PIL import Image

from programs.media import ranges
from programs.media.files import process_upload
from tests.programs.media_support import PHP, jpeg_with_gps, matroska, mp4, png, png_bomb, webm


def _refusal(content: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        process_upload(io.BytesIO(content))
    return caught.value


def test_it_refuses_a_php_script_whatever_its_name():
    error = _refusal(PHP)
    assert error.message_dict["file"] == [
        "This file is not a JPEG, PNG or WebP image, nor an MP4 or WebM video."
    ]


def test_it_refuses_an_svg_which_can_carry_script():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert "file" in _refusal(svg).message_dict


def test_it_refuses_a_decompression_bomb_before_decoding_it():
    bomb = png_bomb()
    assert len(bomb) < 1_000_000  # small on the wire...
    error = _refusal(bomb)  # ...400 million pixels decoded
    assert "million pixels" in error.message_dict["file"][0]


def test_it_refuses_what_pillow_itself_calls_a_bomb_under_a_laxer_limit():
    with override_settings(MEDIA_IMAGE_MAX_PIXELS=10**12):
        error = _refusal(png_bomb())
    assert "million pixels" in error.message_dict["file"][0]


def test_it_strips_exif_gps_and_comments_from_a_jpeg():
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get_ifd(0x8825)  # the GPS position is there
    processed = process_upload(io.BytesIO(original))
    assert processed.kind == "image"
    assert processed.content_type == "image/jpeg"
    assert processed.content is not None
    with Image.open(io.BytesIO(processed.content)) as after:
        assert not after.getexif()
        assert "exif" not in after.info
        assert "comment" not in after.info
    assert b"Secret Camera" not in processed.content
    assert b"home of the patient" not in processed.content


def test_it_applies_the_orientation_tag_before_dropping_it():
    image = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    processed = process_upload(io.BytesIO(out.getvalue()))
    assert (processed.width, processed.height) == (20, 40)


def test_it_scales_large_images_down():
    with override_settings(MEDIA_IMAGE_MAX_SIDE=100):
        processed = process_upload(io.BytesIO(png(size=(400, 200))))
    assert (processed.width, processed.height) == (100, 50)
    assert processed.content_type == "image/png"


def test_it_drops_bytes_appended_after_the_image():
    polyglot = png() + PHP
    processed = process_upload(io.BytesIO(polyglot))
    assert processed.content is not None
    assert b"<?php" not in processed.content


def test_it_refuses_an_image_over_the_size_limit():
    with override_settings(MEDIA_IMAGE_MAX_BYTES=100):
        error = _refusal(png())
    assert error.message_dict["file"][0].startswith("Images may be at most")


def test_it_takes_mp4_and_webm_by_content_and_keeps_their_bytes():
    for content, content_type in ((mp4(), "video/mp4"), (webm(), "video/webm")):
        processed = process_upload(io.BytesIO(content))
        assert (processed.kind, processed.content_type) == ("video", content_type)
        assert processed.size_bytes == len(content)


def test_it_refuses_other_video_containers():
    assert _refusal(matroska()).message_dict["file"] == ["Videos must be MP4 or WebM."]


def test_it_refuses_an_mp4_signature_glued_onto_something_else():
    assert "damaged" in _refusal(mp4()[:40] + PHP * 10).message_dict["file"][0]


def test_it_refuses_an_oversized_video():
    with override_settings(MEDIA_VIDEO_MAX_BYTES=1000):
        error = _refusal(mp4(payload_size=5000))
    assert error.message_dict["file"][0].startswith("Videos may be at most")


def test_it_refuses_an_empty_file():
    assert _refusal(b"").message_dict["file"] == ["The file is empty."]


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=-500", (0, 99)),
    ],
)
def test_it_reads_a_single_byte_range(header, expected):
    wanted = ranges.parse(header, 100)
    assert wanted is not None
    assert (wanted.start, wanted.end) == expected


@pytest.mark.parametrize("header", [None, "", "items=0-5", "bytes=0-1,5-9", "bytes=9-3", "junk"])
def test_it_sends_the_whole_file_for_ranges_it_does_not_serve(header):
    assert ranges.parse(header, 100) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0"])
def test_it_calls_a_range_past_the_end_unsatisfiable(header):
    with pytest.raises(ranges.Unsatisfiable):
        ranges.parse(header, 100)


def test_it_takes_a_phone_cameras_multi_picture_jpeg():
    out = io.BytesIO()
    first, second = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    first.save(out, "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(out.getvalue())) as check:
        assert check.format == "MPO"
    processed = process_upload(io.BytesIO(out.getvalue()))
    assert processed.content_type == "image/jpeg"
    assert processed.content is not None
    with Image.open(io.BytesIO(processed.content)) as stored:
        assert stored.format == "JPEG"
