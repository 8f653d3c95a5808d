from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from notifications import views_devices, views_feed, views_reminders

urlpatterns: list[URLPattern | URLResolver] = [
    path("me/devices/", views_devices.DeviceListCreateApi.as_view(), name="me-devices"),
    path(
        "me/devices/<uuid:device_id>/",
        views_devices.DeviceDeleteApi.as_view(),
        name="me-device-delete",
    ),
    path("me/notifications/", views_feed.FeedListApi.as_view(), name="me-notifications"),
    path(
        "me/notifications/<uuid:item_id>/read/",
        views_feed.FeedItemReadApi.as_view(),
        name="me-notification-read",
    ),
    path(
        "me/follow-ups/<uuid:follow_up_id>/answer/",
        views_feed.FollowUpAnswerApi.as_view(),
        name="me-follow-up-answer",
    ),
    path("me/reminders/", views_reminders.MeRemindersApi.as_view(), name="me-reminders"),
    path("push/webpush-key/", views_devices.WebPushKeyApi.as_view(), name="webpush-key"),
]
