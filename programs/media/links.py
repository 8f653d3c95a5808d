"""Short-lived signed links to exercise media (docs/app-developers.md § Exercise media).

A link is the credential: `/api/v1/media/<token>/`, where the token names one media row
and one variant (the file or its poster) and carries the time it was signed, under the
project's secret key (django.core.signing). It is valid for MEDIA_URL_MAX_AGE seconds.

The signing time is rounded down to a third of that age. The same media then gets the
same link for a while, so the plan a phone polls keeps its ETag (a 304 instead of a
download) and the phone's image cache keeps working; every link still lives at least two
thirds of MEDIA_URL_MAX_AGE, and `expires_at` says exactly until when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.encoding import force_str

SALT = "programs.media.link"
FILE, POSTER = "f", "p"


def _step() -> int:
    return max(1, settings.MEDIA_URL_MAX_AGE // 3)


class _RoundedSigner(signing.TimestampSigner):
    def timestamp(self) -> str:
        now = int(time.time())
        return signing.b62_encode(now - now % _step())


@dataclass(frozen=True)
class Link:
    path: str
    expires_at: datetime


def link(*, media_id: UUID, variant: str = FILE) -> Link:
    token = _RoundedSigner(salt=SALT).sign(f"{media_id}:{variant}")
    signed_at = signing.b62_decode(token.rsplit(":", 2)[-2])
    return Link(
        path=reverse("media-file", kwargs={"token": token}),
        expires_at=datetime.fromtimestamp(signed_at + settings.MEDIA_URL_MAX_AGE, tz=UTC),
    )


@dataclass(frozen=True)
class Signed:
    media_id: UUID
    variant: str
    expires_at: datetime


def read(token: str) -> Signed | None:
    """What a token names, or None when it is forged, altered or expired."""
    signer = _RoundedSigner(salt=SALT)
    try:
        value = signer.unsign(token, max_age=settings.MEDIA_URL_MAX_AGE)
        media_id, variant = force_str(value).split(":")
        signed_at = signing.b62_decode(token.rsplit(":", 2)[-2])
        return Signed(
            media_id=UUID(media_id),
            variant=variant,
            expires_at=datetime.fromtimestamp(signed_at + settings.MEDIA_URL_MAX_AGE, tz=UTC),
        )
    except (signing.BadSignature, ValueError):  # SignatureExpired is a BadSignature
        return None
