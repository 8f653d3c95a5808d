from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PageNumberPagination(pagination.PageNumberPagination):
    """`{count, next, previous, results}` with a client-chosen page size, at most 200.

    DRF cuts a larger `page_size` to the maximum and ignores one that is not a positive
    integer; the contract allows no silent clamp, so both are a 400 naming `page_size`.
    """

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        message = f"Must be a whole number from 1 to {self.max_page_size}."
        try:
            size = int(raw)
        except ValueError:
            raise serializers.ValidationError({self.page_size_query_param: [message]}) from None
        if not 1 <= size <= self.max_page_size:
            raise serializers.ValidationError({self.page_size_query_param: [message]})
        return size


def query_text(request: Request, name: str, *, max_length: int) -> str:
    """A free-text query parameter (a list's `search`), stripped; longer than `max_length`
    is a 400 naming it, never a silent cut."""
    value = str(request.query_params.get(name, "")).strip()
    if len(value) > max_length:
        raise serializers.ValidationError(
            {name: [f"Ensure this value has at most {max_length} characters."]}
        )
    return value


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


def page_schema(name: str, results: serializers.BaseSerializer[Any]) -> serializers.Serializer[Any]:
    """The OpenAPI shape of one page (`paginate`'s answer) of `results` (a `many=True`
    serializer), named `name`: for a view whose page drf-spectacular cannot infer."""
    page: serializers.Serializer[Any] = inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": results,
        },
    )
    return page
