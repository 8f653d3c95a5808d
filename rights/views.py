"""The data-rights API: exports and the patient's access log (docs/data-rights.md)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import page_schema, paginate
from config.replica import replica_reads, streamed_from_replica
from config.serializers import StrictSerializer
from patients import selectors as patient_selectors
from patients.models import AuditEvent, Patient
from patients.permissions import IsClinician, IsPatientAnyConsent
from patients.services import audit_record
from rights import formats, outcomes, selectors, services
from rights.models import ExportFormat, ExportJob
from rights.views_consent import request_user


def _own_patient(request: Request) -> Patient:
    return patient_selectors.patient_for_user(user=request_user(request))


def _clinic_patient(request: Request, patient_id: UUID) -> Patient:
    return patient_selectors.patient_get(user=request_user(request), patient_id=patient_id)


# --------------------------------------------------------------------------- direct exports

_EXPORT_RESPONSES: dict[str, dict[Any, Any]] = {
    ExportFormat.JSON: {(200, "application/json"): OpenApiTypes.OBJECT},
    ExportFormat.CSV: {(200, "text/csv"): OpenApiTypes.STR},
    ExportFormat.FHIR: {(200, "application/fhir+json"): OpenApiTypes.OBJECT},
}
_EXPORT_DESCRIPTIONS: dict[str, str] = {
    ExportFormat.JSON: "Everything held about the patient, one list per section.",
    ExportFormat.CSV: (
        "Everything held about the patient, one line per (section, record_id, field, value). "
        "Cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) "
        "are prefixed with an apostrophe."
    ),
    ExportFormat.FHIR: (
        "A FHIR R4 Bundle (type collection): Patient, Observation (pain NRS as LOINC "
        "72514-3), Questionnaire, QuestionnaireResponse, Procedure, Condition, "
        "DiagnosticReport, Flag, CarePlan, Consent. Every reference resolves inside it."
    ),
}


def _export_response(request: Request, patient: Patient, fmt: ExportFormat) -> HttpResponse:
    user = request_user(request)
    rendered = services.export_render(user=user, patient=patient, fmt=fmt)
    services.export_audit(
        actor=user, patient=patient, fmt=fmt, context=audit_context(request), how="direct"
    )
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.file_name}"'
    response["Cache-Control"] = "no-store"
    return response


def _schema(fmt: str, *, clinician: bool) -> Any:
    responses: dict[Any, Any] = dict(_EXPORT_RESPONSES[fmt])
    if clinician:
        responses[404] = OpenApiResponse(description="Not a patient of your clinic")
    return extend_schema(
        responses=responses,
        description=_EXPORT_DESCRIPTIONS[fmt],
        tags=["clinician: patients" if clinician else "patient: data rights"],
    )


class MeExportJsonApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @_schema(ExportFormat.JSON, clinician=False)
    @replica_reads
    def get(self, request: Request) -> HttpResponse:
        return _export_response(request, _own_patient(request), ExportFormat.JSON)


class MeExportCsvApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @_schema(ExportFormat.CSV, clinician=False)
    @replica_reads
    def get(self, request: Request) -> HttpResponse:
        return _export_response(request, _own_patient(request), ExportFormat.CSV)


class MeExportFhirApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @_schema(ExportFormat.FHIR, clinician=False)
    @replica_reads
    def get(self, request: Request) -> HttpResponse:
        return _export_response(request, _own_patient(request), ExportFormat.FHIR)


class PatientExportJsonApi(APIView):
    permission_classes = [IsClinician]

    @_schema(ExportFormat.JSON, clinician=True)
    @replica_reads
    def get(self, request: Request, patient_id: UUID) -> HttpResponse:
        return _export_response(request, _clinic_patient(request, patient_id), ExportFormat.JSON)


class PatientExportCsvApi(APIView):
    permission_classes = [IsClinician]

    @_schema(ExportFormat.CSV, clinician=True)
    @replica_reads
    def get(self, request: Request, patient_id: UUID) -> HttpResponse:
        return _export_response(request, _clinic_patient(request, patient_id), ExportFormat.CSV)


class PatientExportFhirApi(APIView):
    permission_classes = [IsClinician]

    @_schema(ExportFormat.FHIR, clinician=True)
    @replica_reads
    def get(self, request: Request, patient_id: UUID) -> HttpResponse:
        return _export_response(request, _clinic_patient(request, patient_id), ExportFormat.FHIR)


# --------------------------------------------------------------------------- export jobs


@extend_schema_serializer(component_name="ExportJob")
class ExportJobOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    status = serializers.ChoiceField(choices=ExportJob.Status.choices)
    progress = serializers.IntegerField(help_text="Percent done, 0-100.")
    size_bytes = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the file is removed from storage."
    )
    download_url = serializers.SerializerMethodField(
        help_text="A signed link, valid until `download_url_expires_at`; null until ready."
    )
    download_url_expires_at = serializers.SerializerMethodField()

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.READY:
            return None
        token = services.export_link_token(job=job)
        path = reverse("export-download", kwargs={"token": token})
        return str(self.context["request"].build_absolute_uri(path))

    def get_download_url_expires_at(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.READY:
            return None
        at = self.context["now"] + timedelta(seconds=settings.EXPORT_LINK_MAX_AGE)
        return serializers.DateTimeField().to_representation(at)


def _job_data(request: Request, job: ExportJob) -> Any:
    return ExportJobOutputSerializer(job, context={"request": request, "now": timezone.now()}).data


@extend_schema_serializer(component_name="ExportJobCreate")
class ExportJobInputSerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)


def _job_create(request: Request, patient: Patient) -> Response:
    serializer = ExportJobInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    job = services.export_job_create(
        user=request_user(request),
        patient=patient,
        fmt=serializer.validated_data["format"],
        context=audit_context(request),
    )
    return Response(_job_data(request, job), status=status.HTTP_202_ACCEPTED)


def _job_detail(request: Request, patient: Patient, job_id: UUID) -> Response:
    job = selectors.export_job_get(user=request_user(request), patient=patient, job_id=job_id)
    audit_record(
        actor=request_user(request),
        action=AuditEvent.Action.READ,
        object_type="export_job",
        object_id=job.pk,
        patient=patient,
        context=audit_context(request),
    )
    return Response(_job_data(request, job))


_JOB_CREATE_DESCRIPTION = (
    "Build the export by a worker (for large records): answers 202 with the job; poll it "
    "until `status` is `ready`, then fetch `download_url` (a signed link that expires)."
)


class MeExportJobCreateApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema(
        request=ExportJobInputSerializer,
        responses={202: ExportJobOutputSerializer, 400: OpenApiResponse(description="Bad format")},
        description=_JOB_CREATE_DESCRIPTION,
        tags=["patient: data rights"],
    )
    def post(self, request: Request) -> Response:
        return _job_create(request, _own_patient(request))


class MeExportJobDetailApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema(
        responses={200: ExportJobOutputSerializer, 404: OpenApiResponse(description="Not yours")},
        tags=["patient: data rights"],
    )
    def get(self, request: Request, job_id: UUID) -> Response:
        return _job_detail(request, _own_patient(request), job_id)


class PatientExportJobCreateApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        request=ExportJobInputSerializer,
        responses={
            202: ExportJobOutputSerializer,
            400: OpenApiResponse(description="Bad format"),
            404: OpenApiResponse(description="Not your clinic"),
        },
        description=_JOB_CREATE_DESCRIPTION,
        tags=["clinician: patients"],
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        return _job_create(request, _clinic_patient(request, patient_id))


class PatientExportJobDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        responses={200: ExportJobOutputSerializer, 404: OpenApiResponse(description="Not found")},
        tags=["clinician: patients"],
    )
    def get(self, request: Request, patient_id: UUID, job_id: UUID) -> Response:
        return _job_detail(request, _clinic_patient(request, patient_id), job_id)


class ExportDownloadApi(APIView):
    # The signed link is the credential: it names one job and expires
    # (EXPORT_LINK_MAX_AGE), so the app can hand it to the system browser or share sheet.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="Invalid or expired link (code in the body)"),
        },
        tags=["patient: data rights"],
        description="The export file of a signed link from an export job.",
    )
    def get(self, request: Request, token: str) -> FileResponse:
        job = services.export_download_get(token=token)
        services.export_audit(
            actor=job.requested_by,
            patient=job.patient,
            fmt=job.format,
            context=audit_context(request),
            how="download",
        )
        handle = services.export_storage().open(job.file_name, "rb")
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"patient-{job.patient_id}.{services.EXTENSIONS[ExportFormat(job.format)]}",
            content_type=services.CONTENT_TYPES[ExportFormat(job.format)],
        )
        response["Cache-Control"] = "no-store"
        return response


# --------------------------------------------------------------------------- access log


def _channel(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/dashboard/"):
        return "dashboard"
    if path.startswith("/admin/"):
        return "admin"
    return "system"


class AccessLogActorSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(
        choices=["patient", "physiotherapist", "clinic_admin", "operator", "system", "other"]
    )
    name = serializers.CharField()


def _who(event: AuditEvent, patient: Patient) -> dict[str, str]:
    """Role and display name of whoever acted; never another patient's identity."""
    actor = event.actor
    if actor is None:
        return {"role": "system", "name": gettext("Rehab service")}
    if actor.pk == patient.user_id:
        return {"role": "patient", "name": gettext("You")}
    clinician = getattr(actor, "clinician", None)
    if clinician is not None:
        return {"role": clinician.role, "name": actor.get_full_name()}
    if actor.is_staff:
        return {"role": "operator", "name": actor.get_full_name()}
    return {"role": "other", "name": gettext("Another account")}


@extend_schema_serializer(component_name="AccessLogEntry")
class AccessLogEntrySerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=AuditEvent.Action.choices)
    what = serializers.CharField(source="object_type", help_text="What was read or changed.")
    via = serializers.SerializerMethodField(help_text="api, dashboard, admin or system.")
    who = serializers.SerializerMethodField()

    def get_via(self, event: AuditEvent) -> str:
        return _channel(event.path)

    @extend_schema_field(AccessLogActorSerializer)
    def get_who(self, event: AuditEvent) -> dict[str, str]:
        return _who(event, self.context["patient"])


class MeAccessLogApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema(
        parameters=[
            OpenApiParameter("page", type=int, required=False),
            OpenApiParameter("page_size", type=int, required=False, description="1 to 200"),
        ],
        responses={
            200: page_schema("PaginatedAccessLog", AccessLogEntrySerializer(many=True)),
            400: OpenApiResponse(description="Bad page_size"),
        },
        tags=["patient: data rights"],
        description=(
            "Who read or changed the caller's data, when, what and through what (the API, "
            "the dashboard, the admin, or the service itself), newest first, from the audit "
            "trail. Sign-ins and sign-outs are not listed."
        ),
    )
    def get(self, request: Request) -> Response:
        patient = _own_patient(request)
        response, _ = paginate(
            request=request,
            view=self,
            items=selectors.access_log_list(user=request_user(request), patient=patient),
            serializer_class=AccessLogEntrySerializer,
            context={"patient": patient},
        )
        # Reading the log is itself a read of the patient's data; recorded after the page
        # is taken, so it shows up on the next read, not on this one.
        audit_record(
            actor=request_user(request),
            action=AuditEvent.Action.READ,
            object_type="access_log",
            patient=patient,
            context=audit_context(request),
        )
        return response


# --------------------------------------------------------------------------- outcomes


class ClinicOutcomesCsvApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "view",
                enum=["patients", "summary"],
                required=False,
                description="`patients` (default): one de-identified row per patient; "
                "`summary`: responders by condition and program.",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            400: OpenApiResponse(description="Unknown view"),
            403: OpenApiResponse(description="Not a clinic admin"),
        },
        tags=["clinician: clinic"],
        description=(
            "The clinic's outcomes for service audits, de-identified (no name, id, email or "
            "date; age in ten-year bands; rows in no identifying order), streamed. "
            "Responders reach the MCID of the progress figures (2 points and 30 %). When the "
            "clinic publishes a `research` consent document, only patients who gave it are "
            "included. Clinic admins only."
        ),
    )
    @replica_reads
    def get(self, request: Request) -> StreamingHttpResponse:
        clinician = request_user(request).clinician
        assert clinician is not None
        if clinician.role != clinician.Role.CLINIC_ADMIN:
            raise PermissionDenied("Only a clinic admin can export the clinic's outcomes.")
        view = request.query_params.get("view", "patients")
        if view not in ("patients", "summary"):
            raise serializers.ValidationError({"view": ["Must be patients or summary."]})
        rows = outcomes.OutcomeRows(clinic_id=clinician.clinic_id, today=timezone.now().date())
        body = (
            itertools.chain([outcomes.PATIENT_COLUMNS], rows.patient_rows())
            if view == "patients"
            else itertools.chain([outcomes.SUMMARY_COLUMNS], rows.summary_rows())
        )
        audit_record(
            actor=request_user(request),
            action=AuditEvent.Action.READ,
            object_type="clinic_outcomes",
            changes={"view": view},
            context=audit_context(request),
        )
        response = StreamingHttpResponse(
            streamed_from_replica(formats.csv_rows(body)), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="outcomes-{view}.csv"'
        response["Cache-Control"] = "no-store"
        return response
