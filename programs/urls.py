from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from config.conditional import conditional_get
from programs import views
from programs.education import views as education_views
from programs.media import views as media_views

urlpatterns: list[URLPattern | URLResolver] = [
    # Patient (the app)
    path("me/plan/", conditional_get(views.MyPlanApi.as_view()), name="me-plan"),
    path("me/adherence/", views.MyAdherenceApi.as_view(), name="me-adherence"),
    path("exercise-logs/", views.ExerciseLogListCreateApi.as_view(), name="exercise-logs"),
    path(
        "exercise-logs/<uuid:log_id>/",
        views.ExerciseLogDetailApi.as_view(),
        name="exercise-log-detail",
    ),
    # Patient: education cards
    path("me/education/", education_views.MyCardListApi.as_view(), name="me-education"),
    path(
        "me/education/<uuid:card_id>/",
        education_views.MyCardDetailApi.as_view(),
        name="me-education-card",
    ),
    path(
        "me/education/<uuid:card_id>/read/",
        education_views.MyCardReadApi.as_view(),
        name="me-education-card-read",
    ),
    # Clinician: education cards
    path(
        "clinician/education-cards/",
        education_views.CardListCreateApi.as_view(),
        name="clinician-education-cards",
    ),
    path(
        "clinician/education-cards/<uuid:card_id>/",
        education_views.CardDetailApi.as_view(),
        name="clinician-education-card",
    ),
    path(
        "clinician/education-cards/<uuid:card_id>/versions/",
        education_views.CardVersionCreateApi.as_view(),
        name="clinician-education-card-versions",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/education/",
        education_views.PatientCardsApi.as_view(),
        name="clinician-patient-education",
    ),
    # Exercise media: a signed, expiring link is the credential (docs/app-developers.md)
    path("media/<str:token>/", media_views.MediaFileApi.as_view(), name="media-file"),
    # Clinician: library and templates
    path("clinician/exercises/", views.ExerciseListApi.as_view(), name="clinician-exercises"),
    path(
        "clinician/program-templates/",
        views.TemplateListCreateApi.as_view(),
        name="clinician-program-templates",
    ),
    path(
        "clinician/program-templates/<uuid:template_id>/",
        views.TemplateDetailApi.as_view(),
        name="clinician-program-template-detail",
    ),
    # Clinician: one patient's program
    path(
        "clinician/patients/<uuid:patient_id>/assignments/",
        views.AssignmentCreateApi.as_view(),
        name="clinician-patient-assign",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/program/",
        views.PatientProgramApi.as_view(),
        name="clinician-patient-program",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/exercise-logs/",
        views.PatientExerciseLogListApi.as_view(),
        name="clinician-patient-exercise-logs",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/adherence/",
        views.PatientAdherenceApi.as_view(),
        name="clinician-patient-adherence",
    ),
    path(
        "clinician/assignments/<uuid:assignment_id>/",
        views.AssignmentDetailApi.as_view(),
        name="clinician-assignment-detail",
    ),
    path(
        "clinician/assignments/<uuid:assignment_id>/end/",
        views.AssignmentEndApi.as_view(),
        name="clinician-assignment-end",
    ),
    path(
        "clinician/assigned-exercises/<uuid:assigned_exercise_id>/dosage/",
        views.DosageChangeApi.as_view(),
        name="clinician-dosage-change",
    ),
    # Clinician: progression proposals
    path(
        "clinician/progression-proposals/",
        views.ProposalListApi.as_view(),
        name="clinician-proposals",
    ),
    path(
        "clinician/progression-proposals/<uuid:proposal_id>/",
        views.ProposalDetailApi.as_view(),
        name="clinician-proposal-detail",
    ),
    path(
        "clinician/progression-proposals/<uuid:proposal_id>/accept/",
        views.ProposalAcceptApi.as_view(),
        name="clinician-proposal-accept",
    ),
    path(
        "clinician/progression-proposals/<uuid:proposal_id>/decline/",
        views.ProposalDeclineApi.as_view(),
        name="clinician-proposal-decline",
    ),
]
