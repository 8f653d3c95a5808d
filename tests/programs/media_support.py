"""Files for the exercise media tests, made here byte by byte or with Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from PIL import Image

PHP = b"<?php system($_GET['c']); ?>\n"


def png(size: tuple[int, int] = (64, 48), color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (80, 60)) -> bytes:
    """A JPEG whose EXIF holds a GPS position and a camera model, and a comment."""
    image = Image.new("RGB", size, "orange")
    exif = Image.Exif()
    exif[0x0110] = "Secret Camera 3000"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.5)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"home of the patient")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 20_000) -> bytes:
    """A real decompression bomb: a valid greyscale PNG of side x side black pixels
    (400 million pixels, 400 MB decoded), a few hundred KB compressed."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(payload_size: int = 4096) -> bytes:
    """The box structure of an MP4 file (ftyp, moov, mdat), with patterned media data."""
    ftyp = _box(b"ftyp", b"isom" + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41")
    moov = _box(b"moov", _box(b"mvhd", b"\x00" * 100))
    mdat = _box(b"mdat", bytes(i % 251 for i in range(payload_size)))
    return ftyp + moov + mdat


def webm(payload_size: int = 2048) -> bytes:
    """An EBML header with the WebM doctype, then patterned bytes."""
    header = b"\x1a\x45\xdf\xa3" + b"\x9f" + b"\x42\x86\x81\x01" + b"\x42\x82\x84webm"
    return header + bytes(i % 13 for i in range(payload_size))


def matroska() -> bytes:
    return b"\x1a\x45\xdf\xa3" + b"\x93" + b"\x42\x82\x88matroska" + b"\x00" * 512


@pytest.fixture
def media_root(tmp_path: Path) -> Any:
    """The media storage on a fresh directory of this test."""
    from django.conf import settings

    root = tmp_path / "media"
    storages = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    with override_settings(STORAGES=storages, MEDIA_S3_BUCKET=""):
        yield root


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
