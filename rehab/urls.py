from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from config.conditional import conditional_get
from rehab.views import alerts as alert_views
from rehab.views import caseload as caseload_views
from rehab.views import logs as log_views
from rehab.views import record as record_views

urlpatterns: list[URLPattern | URLResolver] = [
    # --- daily logs, progress, caseload (rehab/views/logs.py, caseload.py) ---
    path("logs/", log_views.LogListCreateApi.as_view(), name="log-list"),
    path("logs/<uuid:log_id>/", log_views.LogDetailApi.as_view(), name="log-detail"),
    path("me/", log_views.MeApi.as_view(), name="me"),
    path("me/progress/", conditional_get(log_views.MeProgressApi.as_view()), name="me-progress"),
    path("clinician/patients/", caseload_views.CaseloadApi.as_view(), name="caseload"),
    path(
        "clinician/patients/<uuid:patient_id>/logs/",
        log_views.PatientLogListApi.as_view(),
        name="clinician-patient-logs",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/progress/",
        log_views.PatientProgressApi.as_view(),
        name="clinician-patient-progress",
    ),
    # --- end daily logs ---
    # --- safety: alerts, notifications, rules (rehab/views/alerts.py) ---
    path("safety/rules/", alert_views.SafetyRulesApi.as_view(), name="safety-rules"),
    path("clinician/alerts/", alert_views.AlertListApi.as_view(), name="alert-list"),
    path(
        "clinician/alerts/<uuid:alert_id>/",
        alert_views.AlertDetailApi.as_view(),
        name="alert-detail",
    ),
    path(
        "clinician/alerts/<uuid:alert_id>/acknowledge/",
        alert_views.AlertAcknowledgeApi.as_view(),
        name="alert-acknowledge",
    ),
    path(
        "clinician/alerts/<uuid:alert_id>/resolve/",
        alert_views.AlertResolveApi.as_view(),
        name="alert-resolve",
    ),
    path(
        "clinician/notifications/",
        alert_views.NotificationListApi.as_view(),
        name="notification-list",
    ),
    path(
        "clinician/notifications/<uuid:notification_id>/read/",
        alert_views.NotificationReadApi.as_view(),
        name="notification-read",
    ),
    # --- end safety ---
    # --- clinical record (rehab/views/record.py) ---
    path(
        "clinician/patients/<uuid:patient_id>/interventions/",
        record_views.InterventionsApi.as_view(),
        name="clinician-patient-interventions",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/provocative-tests/",
        record_views.ProvocativeTestsApi.as_view(),
        name="clinician-patient-provocative-tests",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/imaging-findings/",
        record_views.ImagingFindingsApi.as_view(),
        name="clinician-patient-imaging-findings",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/diagnoses/",
        record_views.DiagnosesApi.as_view(),
        name="clinician-patient-diagnoses",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/diagnoses/<uuid:diagnosis_id>/end/",
        record_views.DiagnosisEndApi.as_view(),
        name="clinician-patient-diagnosis-end",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/assessed-marks/",
        record_views.AssessedMarksApi.as_view(),
        name="clinician-patient-assessed-marks",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/assessed-marks/<uuid:mark_id>/",
        record_views.AssessedMarkDetailApi.as_view(),
        name="clinician-patient-assessed-mark-detail",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/questionnaires/scores/",
        record_views.QuestionnaireScoresApi.as_view(),
        name="clinician-patient-questionnaire-scores",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/questionnaires/schedule/",
        record_views.QuestionnaireScheduleApi.as_view(),
        name="clinician-patient-questionnaire-schedule",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/timeline/",
        record_views.TimelineApi.as_view(),
        name="clinician-patient-timeline",
    ),
    path(
        "me/questionnaires/",
        conditional_get(record_views.MyQuestionnairesApi.as_view()),
        name="me-questionnaires",
    ),
    path(
        "me/questionnaires/<uuid:due_id>/responses/",
        record_views.QuestionnaireResponseSubmitApi.as_view(),
        name="me-questionnaire-response",
    ),
    # --- end clinical record ---
]
