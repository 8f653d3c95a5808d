"""The clinician's caseload list."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import PageNumberPagination, query_text
from config.replica import replica_reads
from patients.models import Patient, User
from patients.permissions import IsClinician
from patients.services import audit_reads
from programs.selectors import caseload_program_figures
from rehab import progress
from rehab.selectors import caseload as selectors
from rehab.selectors.logs import figures_of


class CaseloadRowSerializer(serializers.Serializer[Any]):
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

    def get_adherence_7d(self, patient: Patient) -> float | None:
        """Share (0-1) of the sessions prescribed over the last 7 complete days done."""
        value = self.context.get("adherence", {}).get(patient.pk)
        return round(value, 3) if value is not None else None

    def get_current_phase(self, patient: Patient) -> str | None:
        phase = self.context.get("phases", {}).get(patient.pk)
        return phase["phase_name"] if phase else None

    def get_open_alerts(self, patient: Patient) -> dict[str, int]:
        return {
            "emergency": getattr(patient, "open_emergency", 0),
            "urgent": getattr(patient, "open_urgent", 0),
            "routine": getattr(patient, "open_routine", 0),
        }

    def get_registered(self, patient: Patient) -> bool:
        return patient.user_id is not None

    def _figures(self, patient: Patient) -> progress.Progress:
        # Four fields read the same figures: exact fractions, worked out once per row.
        cache = self.context.setdefault("figures", {})
        if patient.pk not in cache:
            cache[patient.pk] = figures_of(patient)
        figures: progress.Progress = cache[patient.pk]
        return figures

    def get_baseline_pain(self, patient: Patient) -> float | None:
        return self._figures(patient).baseline_pain

    def get_current_pain_7d(self, patient: Patient) -> float | None:
        return self._figures(patient).current_pain_7d

    def get_pain_change_pct(self, patient: Patient) -> float | None:
        return self._figures(patient).percent_change

    def get_mcid_reached(self, patient: Patient) -> bool:
        return self._figures(patient).mcid_reached

    def to_representation(self, instance: Patient) -> dict[str, Any]:
        """The declared fields, in their order, written out: DRF's walk of the fields
        (an attribute look-up and a method call per field, for 16 fields of 50 rows) cost
        more than the rest of the row. The fields still give the schema, and
        tests/rehab/test_caseload.py holds this to DRF's own field-by-field answer."""
        patient = instance
        figures = figures_of(patient)
        last_log_date = patient.last_log_date
        return {
            "id": str(patient.pk),
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "email": patient.email,
            "condition": patient.condition,
            "affected_side": patient.affected_side,
            "registered": patient.user_id is not None,
            "last_log_date": last_log_date.isoformat() if last_log_date is not None else None,
            "latest_pain": patient.latest_pain,
            "baseline_pain": figures.baseline_pain,
            "current_pain_7d": figures.current_pain_7d,
            "pain_change_pct": figures.percent_change,
            "mcid_reached": figures.mcid_reached,
            "open_alerts": self.get_open_alerts(patient),
            "adherence_7d": self.get_adherence_7d(patient),
            "current_phase": self.get_current_phase(patient),
        }


class CaseloadApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
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
        patients = selectors.caseload_list(user=user, search=search)
        paginator = PageNumberPagination()
        page: list[Any] = list(paginator.paginate_queryset(patients, request, view=self) or [])
        audit_reads(
            actor=user,
            object_type="caseload_row",
            patient_ids=(p.pk for p in page),
            context=audit_context(request),
        )
        # Program figures for the page only, in a constant number of queries; each row's
        # local date comes from the caseload query itself (no query for the time zones).
        programs = caseload_program_figures(
            [p.pk for p in page], today_by_patient={p.pk: p.local_date for p in page}
        )
        context = {"adherence": programs.adherence_7d, "phases": programs.phases}
        rows = CaseloadRowSerializer(page, many=True, context=context).data
        return paginator.get_paginated_response(rows)
