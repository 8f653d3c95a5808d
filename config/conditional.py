"""Conditional requests where the app polls (docs/conditional-requests.md).

GET answers carry an `ETag`; a client that sends it back in `If-None-Match` gets a bodyless
304 when nothing changed, which saves the phone the download and the parsing. Edits take
`If-Match`: a stale version is a 412 instead of a silent overwrite of a newer edit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response, patch_cache_control, set_response_etag
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.request import Request

from config.exceptions import PreconditionFailed

ETAG_HEADER = OpenApiParameter(
    "ETag",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    response=["200", "304"],
    description="Version of this answer; send it back in `If-None-Match`.",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="The `ETag` of the copy the client holds: 304, with no body, if unchanged.",
)
CONDITIONAL_GET_PARAMETERS = [ETAG_HEADER, IF_NONE_MATCH]
NOT_MODIFIED = OpenApiResponse(description="Not modified since the `ETag` sent; no body.")

IF_MATCH = OpenApiParameter(
    "If-Match",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The `ETag` of the version being edited: if another edit came first, the answer "
        "is 412 and nothing is changed. Without it, the edit applies to the latest version."
    ),
)
EDITED_ETAG_HEADER = OpenApiParameter(
    "ETag",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    response=["200"],
    description="Version of the object; send it in `If-Match` to edit it.",
)
PRECONDITION_FAILED = "`If-Match` names an older version: fetch the log again, then edit."

ViewFunction = Callable[..., HttpResponseBase]


def conditional_get(view: ViewFunction) -> ViewFunction:
    """Wrap a view (`Api.as_view()`) so that its 200 GETs carry an ETag and answer 304.

    The ETag is a hash of the body (Django's own, as ConditionalGetMiddleware makes it),
    so it changes exactly when the answer does; the view still runs, and audits, each time.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        if not isinstance(response, HttpResponse):  # streamed: no body to hash
            return response
        render = getattr(response, "render", None)
        if callable(render):
            render()
        # Per user and always revalidated: a shared cache must never hold a patient's plan.
        patch_cache_control(response, private=True, no_cache=True)
        set_response_etag(response)
        conditional = get_conditional_response(
            request, etag=response.headers.get("ETag"), response=response
        )
        assert conditional is not None
        return conditional

    return wrapped


def version_etag(version: int) -> str:
    return f'"v{version}"'


def check_if_match(request: Request, *, version: int) -> None:
    """Refuse an edit whose `If-Match` names another version than `version` (call it with
    the row locked, so that no other edit can come between the check and the write)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return
    sent = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if version_etag(version) not in sent:
        raise PreconditionFailed(
            gettext("This log was changed since you fetched it; nothing was saved."),
            extra={"current_etag": version_etag(version)},
        )
