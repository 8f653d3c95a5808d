from __future__ import annotations

from django.urls import path

from patients import views

urlpatterns = [
    path("auth/login/", views.LoginApi.as_view(), name="auth-login"),
    path("auth/logout/", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", views.LogoutAllApi.as_view(), name="auth-logout-all"),
    path("auth/register/", views.RegisterApi.as_view(), name="auth-register"),
    path("auth/devices/", views.DeviceListApi.as_view(), name="auth-device-list"),
    path(
        "auth/devices/<uuid:device_id>/",
        views.DeviceRevokeApi.as_view(),
        name="auth-device-revoke",
    ),
    path("me/settings/", views.MeSettingsApi.as_view(), name="me-settings"),
    path(
        "clinician/invitations/",
        views.InvitationCreateApi.as_view(),
        name="clinician-invitation-create",
    ),
    path(
        "clinician/patients/<uuid:patient_id>/",
        views.PatientDetailApi.as_view(),
        name="clinician-patient-detail",
    ),
]
