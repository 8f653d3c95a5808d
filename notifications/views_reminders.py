"""The patient's reminder settings (`/api/v1/me/reminders/`) and the one-click
unsubscribe page every reminder email links to (docs/app-developers.md, "Reminders")."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.serializers import StrictSerializer
from notifications import reminders
from notifications.models import ReminderSettings
from patients import selectors as patient_selectors
from patients.audit import audit_record
from patients.models import AuditEvent, User
from patients.permissions import IsPatient

TAGS = ["patient: profile"]


class MeRemindersApi(APIView):
    """The signed-in patient's reminder settings."""

    permission_classes = [IsPatient]

    @extend_schema_serializer(component_name="ReminderSettingsUpdate")
    class InputSerializer(StrictSerializer):
        remind_at = serializers.TimeField(
            required=False, help_text="Local time of the day's reminders (HH:MM)."
        )
        daily_log = serializers.BooleanField(required=False)
        questionnaire_due = serializers.BooleanField(required=False)
        exercise_days = serializers.BooleanField(required=False)
        missed_log_email = serializers.BooleanField(required=False)
        channels = serializers.ChoiceField(
            choices=ReminderSettings.Channels.choices, required=False
        )
        quiet_start = serializers.TimeField(
            required=False, allow_null=True, help_text="Local start of quiet hours, or null."
        )
        quiet_end = serializers.TimeField(
            required=False, allow_null=True, help_text="Local end of quiet hours, or null."
        )

    @extend_schema_serializer(component_name="ReminderSettings")
    class OutputSerializer(serializers.Serializer[Any]):
        remind_at = serializers.TimeField(format="%H:%M")
        daily_log = serializers.BooleanField()
        questionnaire_due = serializers.BooleanField()
        exercise_days = serializers.BooleanField()
        missed_log_email = serializers.BooleanField()
        channels = serializers.ChoiceField(choices=ReminderSettings.Channels.choices)
        quiet_start = serializers.TimeField(format="%H:%M", allow_null=True)
        quiet_end = serializers.TimeField(format="%H:%M", allow_null=True)
        timezone = serializers.CharField(
            source="patient.timezone", help_text="The time zone the times are in."
        )

    @extend_schema(responses={200: OutputSerializer}, tags=TAGS)
    def get(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        patient = patient_selectors.patient_for_user(user=user)
        audit_record(
            actor=user,
            action=AuditEvent.Action.READ,
            object_type="reminder_settings",
            object_id=patient.pk,
            patient=patient,
            context=audit_context(request),
        )
        current = reminders.reminder_settings_get(patient=patient)
        return Response(self.OutputSerializer(current).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=TAGS)
    def patch(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        patient = patient_selectors.patient_for_user(user=user)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        current = reminders.reminder_settings_update(
            patient=patient,
            actor=user,
            data=serializer.validated_data,
            context=audit_context(request),
        )
        return Response(self.OutputSerializer(current).data)


WHAT = {
    "daily_log": _("daily log reminders"),
    "questionnaire_due": _("questionnaire reminders"),
    "exercise_days": _("exercise day reminders"),
    "missed_log_email": _("missed-log emails"),
}


def _page(
    request: HttpRequest, *, title: str, message: str, ask: bool, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "notifications/unsubscribe.html",
        {"title": title, "message": message, "ask": ask, "button": gettext("Unsubscribe")},
        status=status,
    )


@csrf_exempt  # RFC 8058: mail providers POST without our cookies; the token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a confirmation page (link scanners follow GETs, so a GET changes nothing);
    POST: switch the kind off, from the page's button or the mail client's one click. In
    the patient's language, else the browser's."""
    try:
        patient_id, what = reminders.unsubscribe_read(token)
        language = reminders.patient_language(patient_id=patient_id)
    except reminders.BadToken:
        return _page(
            request,
            title=gettext("This link does not work"),
            message=gettext(
                "The unsubscribe link has expired or is damaged. You can change your "
                "reminders in the app, under Settings."
            ),
            ask=False,
            status=400,
        )
    with translation.override(language or translation.get_language()):
        if request.method == "POST":
            reminders.unsubscribe(token=token, context=audit_context(request))
            return _page(
                request,
                title=gettext("You are unsubscribed"),
                message=gettext(
                    "You will no longer receive %(what)s. You can turn them back on in the "
                    "app, under Settings."
                )
                % {"what": WHAT[what]},
                ask=False,
            )
        return _page(
            request,
            title=gettext("Unsubscribe"),
            message=gettext("Stop receiving %(what)s?") % {"what": WHAT[what]},
            ask=True,
        )
