from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PageNumberPagination(pagination.PageNumberPagination):
    """`{count, next, previous, results}` with a client-chosen page size, capped."""

    page_size_query_param = "page_size"
    max_page_size = 200


def paginate(
    *,
    request: Request,
    view: APIView,
    items: Any | Sequence[Any],
    serializer_class: type[serializers.BaseSerializer[Any]],
    context: dict[str, Any] | None = None,
) -> tuple[Response, list[Any]]:
    """One page of `items` in the contract's list shape, and the page's objects (for the
    audit trail and page-only batch reads)."""
    paginator = PageNumberPagination()
    page = list(paginator.paginate_queryset(items, request, view=view) or [])  # type: ignore[arg-type]
    data = serializer_class(page, many=True, context=context or {}).data
    return paginator.get_paginated_response(data), page
