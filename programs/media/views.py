"""The signed media link: `GET /api/v1/media/<token>/` (docs/app-developers.md § Exercise
media). The token is the credential, so the phone's image view or video player can fetch
it without the API token; it names one file and expires."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from config.exceptions import ApplicationError
from programs.media import links, ranges, selectors
from programs.media.services import media_storage

CHUNK = 64 * 1024
# Served files are inert: never a page, never sniffed into one (docs/security.md).
SANDBOX = "default-src 'none'; sandbox"


class _Slice:
    """Reads at most `length` bytes of `handle` from where it stands. No `fileno` or
    `seek`: a server's sendfile must not send the whole file for a range."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self.handle = handle
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(CHUNK), b"")


class _AnyAccept(BaseContentNegotiation):
    """Players and image views send `Accept: video/mp4`, `image/*` and the like; the answer
    is the file whatever they accept (errors are still JSON)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


class MediaFileApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    content_negotiation_class = _AnyAccept

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "Range",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="One byte range, e.g. `bytes=0-1023`: answered with a 206.",
            )
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="S3 storage: to a presigned URL of the file"),
            304: OpenApiResponse(description="`If-None-Match` names this file"),
            400: OpenApiResponse(description="Invalid or expired link (`code`)"),
            404: OpenApiResponse(description="The media was removed"),
            416: OpenApiResponse(description="The range starts past the end of the file"),
        },
        tags=["patient: programs"],
        description=(
            "The file of a signed media link from the plan (`media[].url`, `poster_url`). "
            "No API token needed: the link is the credential, valid until its "
            "`expires_at`; an expired link is a 400 with `code: media_link_invalid` "
            "(fetch the plan again). Supports single byte ranges for video seeking."
        ),
    )
    def get(self, request: Request, token: str) -> HttpResponseBase:
        signed = links.read(token)
        if signed is None:
            raise ApplicationError(
                gettext("This media link is invalid or has expired; fetch the plan again."),
                code="media_link_invalid",
            )
        media = selectors.media_for_link(media_id=signed.media_id)
        if signed.variant == links.FILE and media is not None:
            name, content_type, etag = media.file_name, media.content_type, media.sha256
        elif signed.variant == links.POSTER and media is not None and media.poster_name:
            name, content_type, etag = media.poster_name, "image/jpeg", f"{media.pk}-poster"
        else:
            raise NotFound
        left = max(1, int((signed.expires_at - timezone.now()).total_seconds()))
        # Private: a shared cache never holds it; the phone may keep it while the link lives.
        cache_control = f"private, max-age={left}"
        storage = media_storage()
        if settings.MEDIA_S3_BUCKET and settings.MEDIA_S3_REDIRECT:
            url = storage.url(  # type: ignore[call-arg]  # S3Storage's own arguments
                name,
                parameters={
                    "ResponseContentType": content_type,
                    "ResponseCacheControl": cache_control,
                },
                expire=left,
            )
            redirect = HttpResponseRedirect(url)
            redirect["Cache-Control"] = "private, no-store"
            return redirect
        return _file_response(
            request,
            handle=storage.open(name, "rb"),
            size=storage.size(name),
            content_type=content_type,
            etag=f'"{etag}"',
            cache_control=cache_control,
        )


def _file_response(
    request: Request,
    *,
    handle: IO[bytes],
    size: int,
    content_type: str,
    etag: str,
    cache_control: str,
) -> HttpResponseBase:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": cache_control,
        "Content-Security-Policy": SANDBOX,
        "Content-Disposition": "inline",
    }
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        handle.close()
        return HttpResponse(status=304, headers=headers)
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if header and if_range is not None and if_range.strip() != etag:
        header = None  # the client's copy is another version: send all of this one
    try:
        wanted = ranges.parse(header, size)
    except ranges.Unsatisfiable:
        handle.close()
        return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        response = FileResponse(handle, content_type=content_type, headers=headers)
        response["Content-Length"] = str(size)
        return response
    handle.seek(wanted.start)
    partial = FileResponse(
        _Slice(handle, wanted.length), status=206, content_type=content_type, headers=headers
    )
    partial["Content-Length"] = str(wanted.length)
    partial["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
    return partial
