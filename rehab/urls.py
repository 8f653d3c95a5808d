from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from rehab.views import logs as log_views  # noqa: F401
from rehab.views import record as record_views

urlpatterns: list[URLPattern | URLResolver] = [
    # --- daily logs, progress, caseload (rehab/views/logs.py) ---
    # --- end daily logs ---
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
        "me/questionnaires/", record_views.MyQuestionnairesApi.as_view(), name="me-questionnaires"
    ),
    path(
        "me/questionnaires/<uuid:due_id>/responses/",
        record_views.QuestionnaireResponseSubmitApi.as_view(),
        name="me-questionnaire-response",
    ),
    # --- end clinical record ---
]
