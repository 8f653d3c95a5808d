from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Count, QuerySet, Window
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# The window count `CountedPaginator` reads from its page's rows (an extra key, or attribute).
PAGE_TOTAL = "page_total"


class CountedPaginator(Paginator[Any]):
    """Django's paginator for an ordered queryset, counting the whole list in the page's
    own query (`COUNT(*) OVER ()`, annotated as PAGE_TOTAL on every row) rather than in a
    COUNT query of its own: one statement and its compilation fewer per page. The pages,
    the counts and the errors are Django's: a page that comes back empty (past the end,
    or an empty list beyond page 1) or a page number that is not a positive integer take
    Django's own path, and its COUNT query; so do orphans. A count asked for before the
    page (DRF's "last" page) is Django's COUNT query, and the page's own count then
    replaces it.

    Only for a queryset whose rows are the list's items (no DISTINCT, no GROUP BY): the
    window counts the rows the WHERE clause keeps.
    """

    def __init__(self, object_list: QuerySet[Any], per_page: int | str, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.queryset = object_list

    def page(self, number: Any) -> Page[Any]:
        wanted = _positive_int(number)
        if wanted is None or self.orphans:
            return super().page(number)
        bottom = (wanted - 1) * self.per_page
        rows = list(
            self.queryset.annotate(**{PAGE_TOTAL: Window(Count("*"))})[
                bottom : bottom + self.per_page
            ]
        )
        if rows:
            first = rows[0]
            total = first[PAGE_TOTAL] if isinstance(first, dict) else getattr(first, PAGE_TOTAL)
            self.count = total
        elif wanted == 1 and self.allow_empty_first_page:
            self.count = 0
        else:
            return super().page(number)
        return Page(rows, wanted, self)

    def get_page(self, number: Any) -> Page[Any]:
        """`Paginator.get_page`: page 1 for a number that is not an integer, the last page
        for one out of range."""
        try:
            return self.page(number)
        except PageNotAnInteger:
            return self.page(1)
        except EmptyPage:
            return self.page(self.num_pages)


def _positive_int(number: Any) -> int | None:
    """The page number as `Paginator.validate_number` reads it, if it is 1 or more."""
    if isinstance(number, float) and not number.is_integer():
        return None
    try:
        wanted = int(number)
    except (TypeError, ValueError):
        return None
    return wanted if wanted >= 1 else None


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


class CountedPageNumberPagination(PageNumberPagination):
    """`PageNumberPagination` whose page query also counts the list (`CountedPaginator`):
    for a hot list over an ordered queryset; its rows carry PAGE_TOTAL."""

    django_paginator_class = CountedPaginator


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
