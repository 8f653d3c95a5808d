"""The clinician's caseload list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import CountedPageNumberPagination, query_text
from config.replica import replica_reads
from patients.models import User
from patients.permissions import IsClinician
from patients.services import audit_reads
from programs.selectors import caseload_program_figures
from rehab.selectors import caseload as selectors
from rehab.selectors.logs import figures_of_row

# What a row reads of `caseload_list`, as `values()`: a page of dicts rather than of
# Patient instances with every column (~2 ms of a 50-row page).
ROW_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "condition",
    "affected_side",
    "user_id",
    "last_log_date",
    "latest_pain",
    "baseline_sum",
    "baseline_n",
    "current_sum",
    "current_n",
    "open_emergency",
    "open_urgent",
    "open_routine",
    "local_date",
)


class CaseloadRowSerializer(serializers.Serializer[Any]):
    """One caseload row from a `caseload_list` row read as `values(*ROW_FIELDS)`."""

    id = serializers.UUIDField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.EmailField()
    condition = serializers.CharField()
    affected_side = serializers.CharField()
    registered = serializers.SerializerMethodField()
    last_log_date = serializers.DateField(allow_null=True)
    latest_pain = serializers.IntegerField(allow_null=True)
    baseline_pain = serializers.SerializerMethodField()
    current_pain_7d = serializers.SerializerMethodField()
    pain_change_pct = serializers.SerializerMethodField()
    mcid_reached = serializers.SerializerMethodField()
    open_alerts = serializers.SerializerMethodField()
    adherence_7d = serializers.SerializerMethodField()
    current_phase = serializers.SerializerMethodField()

    def get_adherence_7d(self, row: Mapping[str, Any]) -> float | None:
        """Share (0-1) of the sessions prescribed over the last 7 complete days done."""
        value = self.context.get("adherence", {}).get(row["id"])
        return round(value, 3) if value is not None else None

    def get_current_phase(self, row: Mapping[str, Any]) -> str | None:
        phase = self.context.get("phases", {}).get(row["id"])
        return phase["phase_name"] if phase else None

    def get_open_alerts(self, row: Mapping[str, Any]) -> dict[str, int]:
        return {
            "emergency": row["open_emergency"],
            "urgent": row["open_urgent"],
            "routine": row["open_routine"],
        }

    def get_registered(self, row: Mapping[str, Any]) -> bool:
        return row["user_id"] is not None

    # The four pain figures' methods give the schema their types (and DRF's own
    # field-by-field answer, which tests compare `to_representation` with); a response
    # is written by `to_representation`, which works the figures out once per row.
    def get_baseline_pain(self, row: Mapping[str, Any]) -> float | None:
        return figures_of_row(row).baseline_pain

    def get_current_pain_7d(self, row: Mapping[str, Any]) -> float | None:
        return figures_of_row(row).current_pain_7d

    def get_pain_change_pct(self, row: Mapping[str, Any]) -> float | None:
        return figures_of_row(row).percent_change

    def get_mcid_reached(self, row: Mapping[str, Any]) -> bool:
        return figures_of_row(row).mcid_reached

    def to_representation(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """The declared fields, in their order, written out: DRF's walk of the fields
        (an attribute look-up and a method call per field, for 16 fields of 50 rows) cost
        more than the rest of the row. The fields still give the schema, and
        tests/programs/test_caseload_figures.py holds this to DRF's own field-by-field
        answer."""
        row = instance
        figures = figures_of_row(row)
        last_log_date = row["last_log_date"]
        return {
            "id": str(row["id"]),
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "email": row["email"],
            "condition": row["condition"],
            "affected_side": row["affected_side"],
            "registered": row["user_id"] is not None,
            "last_log_date": last_log_date.isoformat() if last_log_date is not None else None,
            "latest_pain": row["latest_pain"],
            "baseline_pain": figures.baseline_pain,
            "current_pain_7d": figures.current_pain_7d,
            "pain_change_pct": figures.percent_change,
            "mcid_reached": figures.mcid_reached,
            "open_alerts": self.get_open_alerts(row),
            "adherence_7d": self.get_adherence_7d(row),
            "current_phase": self.get_current_phase(row),
        }


class CaseloadApi(APIView):
    pagination_class = CountedPageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=[OpenApiParameter("search", type=str, description="name, email or condition")],
        responses={200: CaseloadRowSerializer(many=True)},
        tags=["clinician: patients"],
        description="The clinician's clinic's patients, most urgent first.",
    )
    @replica_reads
    def get(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        search = query_text(request, "search", max_length=100)
        rows = selectors.caseload_list(user=user, search=search).values(*ROW_FIELDS)
        # The page's query counts the caseload too (`CountedPaginator`): no COUNT query.
        paginator = CountedPageNumberPagination()
        page: list[dict[str, Any]] = list(
            paginator.paginate_queryset(rows, request, view=self) or []
        )
        audit_reads(
            actor=user,
            object_type="caseload_row",
            patient_ids=(row["id"] for row in page),
            context=audit_context(request),
        )
        # Program figures for the page only, in a constant number of queries; each row's
        # local date comes from the caseload query itself (no query for the time zones).
        programs = caseload_program_figures(
            [row["id"] for row in page],
            today_by_patient={row["id"]: row["local_date"] for row in page},
        )
        context = {"adherence": programs.adherence_7d, "phases": programs.phases}
        data = CaseloadRowSerializer(page, many=True, context=context).data
        return paginator.get_paginated_response(data)
