from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from notifications import views_devices, views_reminders

urlpatterns: list[URLPattern | URLResolver] = [
    path("me/devices/", views_devices.DeviceListCreateApi.as_view(), name="me-devices"),
    path(
        "me/devices/<uuid:device_id>/",
        views_devices.DeviceDeleteApi.as_view(),
        name="me-device-delete",
    ),
    path("me/reminders/", views_reminders.MeRemindersApi.as_view(), name="me-reminders"),
    path("push/webpush-key/", views_devices.WebPushKeyApi.as_view(), name="webpush-key"),
]
