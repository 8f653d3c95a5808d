from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from rights import views, views_consent, views_erasure

urlpatterns: list[URLPattern | URLResolver] = [
    path("me/export/json/", views.MeExportJsonApi.as_view(), name="me-export-json"),
    path("me/export/csv/", views.MeExportCsvApi.as_view(), name="me-export-csv"),
    path("me/export/fhir/", views.MeExportFhirApi.as_view(), name="me-export-fhir"),
    path("me/exports/", views.MeExportJobCreateApi.as_view(), name="me-export-jobs"),
    path("me/exports/<uuid:job_id>/", views.MeExportJobDetailApi.as_view(), name="me-export-job"),
    path("me/access-log/", views.MeAccessLogApi.as_view(), name="me-access-log"),
    path(
        "clinician/patients/<uuid:patient_id>/export/json/",
        views.PatientExportJsonApi.as_view(),
        name="clinician-patient-export-json",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/export/csv/",
        views.PatientExportCsvApi.as_view(),
        name="clinician-patient-export-csv",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/export/fhir/",
        views.PatientExportFhirApi.as_view(),
        name="clinician-patient-export-fhir",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/exports/",
        views.PatientExportJobCreateApi.as_view(),
        name="clinician-patient-export-jobs",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/exports/<uuid:job_id>/",
        views.PatientExportJobDetailApi.as_view(),
        name="clinician-patient-export-job",
    ),
    path("me/consents/", views_consent.MyConsentsApi.as_view(), name="me-consents"),
    path(
        "me/consents/history/",
        views_consent.MyConsentHistoryApi.as_view(),
        name="me-consent-history",
    ),
    path(
        "me/consents/<uuid:document_id>/",
        views_consent.MyConsentDecideApi.as_view(),
        name="me-consent-decide",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/consents/",
        views_consent.PatientConsentsApi.as_view(),
        name="clinician-patient-consents",
    ),
    path(
        "clinician/consent-documents/",
        views_consent.ConsentDocumentListCreateApi.as_view(),
        name="consent-documents",
    ),
    path(
        "clinician/consent-documents/<uuid:document_id>/publish/",
        views_consent.ConsentDocumentPublishApi.as_view(),
        name="consent-document-publish",
    ),
    path(
        "clinician/outcomes/csv/", views.ClinicOutcomesCsvApi.as_view(), name="clinic-outcomes-csv"
    ),
    path(
        "me/erasure-request/",
        views_erasure.MyErasureRequestApi.as_view(),
        name="me-erasure-request",
    ),
    path(
        "clinician/erasure-requests/",
        views_erasure.ErasureRequestListApi.as_view(),
        name="erasure-requests",
    ),
    path(
        "clinician/erasure-requests/<uuid:request_id>/decide/",
        views_erasure.ErasureRequestDecideApi.as_view(),
        name="erasure-request-decide",
    ),
    path("clinician/retention/", views_erasure.RetentionApi.as_view(), name="clinic-retention"),
    path(
        "exports/download/<str:token>/", views.ExportDownloadApi.as_view(), name="export-download"
    ),
]
