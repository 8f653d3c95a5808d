"""The clinician web dashboard, at /dashboard/ (dashboard/views.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard import two_factor, views, views_editor, views_education, views_media

app_name = "dashboard"

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", views.DashboardLoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("two-factor/", two_factor.two_factor_view, name="two-factor"),
    path("two-factor/verify/", two_factor.two_factor_verify_view, name="two-factor-verify"),
    path("two-factor/setup/", two_factor.two_factor_setup_view, name="two-factor-setup"),
    path(
        "two-factor/recovery-codes/",
        two_factor.recovery_codes_view,
        name="two-factor-recovery-codes",
    ),
    path("two-factor/disable/", two_factor.two_factor_disable_view, name="two-factor-disable"),
    path("", views.caseload_view, name="caseload"),
    path("patients/<uuid:patient_id>/", views.patient_view, name="patient"),
    path("alerts/", views.alert_inbox_view, name="alerts"),
    path("alerts/<uuid:alert_id>/", views.alert_view, name="alert"),
    path(
        "alerts/<uuid:alert_id>/acknowledge/",
        views.alert_acknowledge_view,
        name="alert-acknowledge",
    ),
    path("alerts/<uuid:alert_id>/resolve/", views.alert_resolve_view, name="alert-resolve"),
    # The template editor, one patient's plan and the previews (views_editor.py)
    path("templates/", views_editor.template_list_view, name="templates"),
    path("templates/new/", views_editor.template_new_view, name="template-new"),
    path("templates/<uuid:template_id>/", views_editor.template_edit_view, name="template-edit"),
    path(
        "templates/<uuid:template_id>/copy/", views_editor.template_copy_view, name="template-copy"
    ),
    path(
        "templates/<uuid:template_id>/preview/",
        views_editor.template_preview_view,
        name="template-preview",
    ),
    path("patients/<uuid:patient_id>/plan/", views_editor.patient_plan_view, name="patient-plan"),
    path(
        "patients/<uuid:patient_id>/plan/preview/",
        views_editor.patient_preview_view,
        name="patient-preview",
    ),
    # Education cards (views_education.py)
    path("education/", views_education.card_list_view, name="education"),
    path("education/new/", views_education.card_new_view, name="education-new"),
    path("education/<uuid:card_id>/", views_education.card_view, name="education-card"),
    path(
        "patients/<uuid:patient_id>/education/",
        views_education.patient_education_view,
        name="patient-education",
    ),
    # Exercise library and its media (dashboard/views_media.py)
    path("exercises/", views_media.exercise_library_view, name="exercises"),
    path(
        "exercises/<uuid:exercise_id>/media/",
        views_media.exercise_media_view,
        name="exercise-media",
    ),
    path(
        "exercises/<uuid:exercise_id>/media/<uuid:media_id>/delete/",
        views_media.exercise_media_delete_view,
        name="exercise-media-delete",
    ),
    path(
        "exercises/<uuid:exercise_id>/media/<uuid:media_id>/move/",
        views_media.exercise_media_move_view,
        name="exercise-media-move",
    ),
]
