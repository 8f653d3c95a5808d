"""What an uploaded exercise media file is, decided from its bytes, and what is stored.

Nothing here trusts the file's name or the browser's content type: the kind comes from the
content (Pillow's own format detection for images, magic bytes for videos). Images are
decoded and re-encoded, so what is stored is pixels Pillow wrote, with no EXIF (GPS
position, camera serial), no comments and nothing appended after the image data (a
polyglot file). Videos are never decoded on the server (no video decoder runs on
untrusted input here): their container is checked from its structure, MP4 or WebM only.
docs/architecture.md § Exercise media.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from typing import IO

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# Pillow format -> (stored format, content type, extension). PNG stays PNG (line drawings
# stay crisp, transparency is kept); JPEG and WebP are stored as JPEG.
IMAGE_FORMATS = {
    "JPEG": ("JPEG", "image/jpeg", "jpg"),
    # What Pillow calls many phone cameras' JPEGs (with a second, hidden picture).
    "MPO": ("JPEG", "image/jpeg", "jpg"),
    "PNG": ("PNG", "image/png", "png"),
    "WEBP": ("JPEG", "image/jpeg", "jpg"),
}
VIDEO_TYPES = {"video/mp4": "mp4", "video/webm": "webm"}
JPEG_QUALITY = 85
# Enough of the head of a file for every signature checked below.
SNIFF_BYTES = 8192


def upload_body_limit() -> int:
    """The largest request body an upload form takes: a video, its poster and the form's
    other fields (config.middleware refuses larger bodies with a 413 before reading them)."""
    return settings.MEDIA_VIDEO_MAX_BYTES + settings.MEDIA_IMAGE_MAX_BYTES + 1024 * 1024


@dataclass(frozen=True)
class Processed:
    """A file ready to store: its bytes, what they are, and their digest."""

    kind: str  # "image" or "video"
    content: bytes | None  # images: the re-encoded bytes
    source: IO[bytes] | None  # videos: the upload itself, stored as sent
    content_type: str
    extension: str
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None


def _size(upload: IO[bytes]) -> int:
    upload.seek(0, io.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    return size


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"


def process_upload(upload: IO[bytes], *, field: str = "file") -> Processed:
    """The stored form of an upload, or a ValidationError saying what is wrong with it."""
    size = _size(upload)
    if size == 0:
        raise ValidationError({field: "The file is empty."}, code="empty")
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    video_type = _video_type(head)
    if video_type is not None:
        return _video(upload, size=size, content_type=video_type, field=field)
    return process_image(upload, size=size, field=field)


def process_image(
    upload: IO[bytes], *, size: int | None = None, field: str = "file", poster: bool = False
) -> Processed:
    """Decode, check, orient, scale down and re-encode an image (JPEG, PNG or WebP)."""
    size = _size(upload) if size is None else size
    if size > settings.MEDIA_IMAGE_MAX_BYTES:
        raise ValidationError(
            {field: f"Images may be at most {_mb(settings.MEDIA_IMAGE_MAX_BYTES)}."},
            code="too_large",
        )
    limit = settings.MEDIA_IMAGE_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its own limit: any bomb warning is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                if image.format not in IMAGE_FORMATS:
                    raise _unsupported(field)
                width, height = image.size
                # Checked from the header, before a single pixel is decoded.
                if width * height > limit:
                    raise _bomb(field, limit)
                image.load()
                stored = _reencode(image, poster=poster)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb(field, limit) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Not an image Pillow knows, or a truncated or corrupt one.
        raise _unsupported(field) from exc
    content, fmt, w, h = stored
    _, content_type, extension = IMAGE_FORMATS["JPEG" if fmt == "JPEG" else "PNG"]
    return Processed(
        kind="image",
        content=content,
        source=None,
        content_type=content_type,
        extension=extension,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        width=w,
        height=h,
    )


def _unsupported(field: str) -> ValidationError:
    return ValidationError(
        {field: "This file is not a JPEG, PNG or WebP image, nor an MP4 or WebM video."},
        code="unsupported_type",
    )


def _bomb(field: str, limit: int) -> ValidationError:
    return ValidationError(
        {
            field: f"This image has more than {limit // 1_000_000} million pixels; "
            "send a smaller one."
        },
        code="too_many_pixels",
    )


def _to_srgb(image: Image.Image) -> Image.Image:
    """Pixels in sRGB, so that dropping the embedded colour profile changes no colour."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unreadable profile: the pixels as they are
    return converted if converted is not None else image


def _reencode(image: Image.Image, *, poster: bool) -> tuple[bytes, str, int, int]:
    source_format = image.format or ""
    # The camera's orientation tag applied to the pixels, since the tag itself goes.
    oriented = ImageOps.exif_transpose(image) or image
    oriented = _to_srgb(oriented)
    side = settings.MEDIA_IMAGE_MAX_SIDE
    oriented.thumbnail((side, side), Image.Resampling.LANCZOS)
    # Pillow's writers carry some of `info` over (a JPEG's comment, the ICC profile):
    # the stored file starts from no metadata at all.
    oriented.info = {}
    target = "JPEG" if poster else IMAGE_FORMATS[source_format][0]
    out = io.BytesIO()
    if target == "PNG":
        keep = oriented.mode if oriented.mode in ("RGB", "RGBA", "L", "LA") else "RGBA"
        # No `pnginfo`, `exif` or `icc_profile`: the new file carries no metadata.
        oriented.convert(keep).save(out, "PNG", optimize=True)
    else:
        if oriented.mode in ("RGBA", "LA", "P"):
            rgba = oriented.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            oriented = flat
        elif oriented.mode != "RGB":
            oriented = oriented.convert("RGB")
        oriented.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue(), target, oriented.width, oriented.height


# --------------------------------------------------------------------------- video


def _video_type(head: bytes) -> str | None:
    """ "video/mp4" or "video/webm" when the head says so, else None (an image, or
    something refused later). Other containers (QuickTime, Matroska, AVI) are not taken:
    the apps' players are only promised these two."""
    kind = filetype.video_match(head)
    return None if kind is None else str(kind.mime)


def _video(upload: IO[bytes], *, size: int, content_type: str, field: str) -> Processed:
    if content_type not in VIDEO_TYPES:
        raise ValidationError({field: "Videos must be MP4 or WebM."}, code="unsupported_type")
    if size > settings.MEDIA_VIDEO_MAX_BYTES:
        raise ValidationError(
            {field: f"Videos may be at most {_mb(settings.MEDIA_VIDEO_MAX_BYTES)}."},
            code="too_large",
        )
    if content_type == "video/mp4" and not _mp4_boxes_ok(upload, size):
        raise ValidationError(
            {field: "This MP4 file is damaged or incomplete."}, code="unsupported_type"
        )
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in iter(lambda: upload.read(1024 * 1024), b""):
        digest.update(chunk)
    upload.seek(0)
    return Processed(
        kind="video",
        content=None,
        source=upload,
        content_type=content_type,
        extension=VIDEO_TYPES[content_type],
        size_bytes=size,
        sha256=digest.hexdigest(),
    )


def _mp4_boxes_ok(upload: IO[bytes], size: int) -> bool:
    """The top-level boxes of an ISO base media file tile it exactly, starting with
    `ftyp`, and include the movie header (`moov`) and media data (`mdat`): a file with
    an MP4 signature glued onto something else does not."""
    seen: list[bytes] = []
    offset = 0
    while offset < size:
        upload.seek(offset)
        header = upload.read(8)
        if len(header) < 8:
            return False
        length, box = struct.unpack(">I4s", header)
        if length == 1:  # 64-bit size follows
            large = upload.read(8)
            if len(large) < 8:
                return False
            length = struct.unpack(">Q", large)[0]
        elif length == 0:  # to the end of the file
            length = size - offset
        if length < 8 or offset + length > size:
            return False
        seen.append(box)
        offset += length
    upload.seek(0)
    return bool(seen) and seen[0] == b"ftyp" and b"moov" in seen and b"mdat" in seen
