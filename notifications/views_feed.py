"""The patient's notifications feed and the safety follow-up's answer
(docs/app-developers.md, "Notifications feed")."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import page_schema, paginate
from config.serializers import StrictSerializer
from notifications import feed, follow_ups, selectors
from notifications.models import FeedItem, SafetyFollowUp
from patients.models import AuditEvent, User
from patients.permissions import IsPatient, IsPatientAnyConsent
from patients.services import audit_record

TAGS = ["patient: notifications"]


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class FollowUpChoiceSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    # The output's key is `label`; DRF's Field has a `label` attribute of its own, which
    # this declared field shadows on purpose, as DRF allows.
    label = serializers.CharField()  # type: ignore[assignment]


@extend_schema_serializer(component_name="SafetyFollowUp")
class FollowUpSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    severity = serializers.CharField(help_text="The advice's severity: `emergency` or `urgent`.")
    advised_at = serializers.DateTimeField(help_text="When the app showed the advice.")
    seen_by = serializers.CharField(help_text="The answer given, blank until answered.")
    answered_at = serializers.DateTimeField(allow_null=True)
    choices = serializers.SerializerMethodField()

    @extend_schema_field(FollowUpChoiceSerializer(many=True))
    def get_choices(self, follow_up: SafetyFollowUp) -> list[dict[str, str]]:
        choices = SafetyFollowUp.SeenBy.choices
        return [{"value": value, "label": str(label)} for value, label in choices]


@extend_schema_serializer(component_name="FeedItem")
class FeedItemSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.CharField(
        help_text="`missed_log_reminder`, `safety_follow_up`, `reminder`, ...: show unknown "
        "kinds with their title and body."
    )
    title = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
    follow_up = serializers.SerializerMethodField(
        help_text="`safety_follow_up` only: the question to answer "
        "(`POST /api/v1/me/follow-ups/{id}/answer/`)."
    )
    reminder = serializers.SerializerMethodField(
        help_text="`reminder` only: `daily_log`, `questionnaire_due` or `exercise_day`, "
        "the screen to open (as a reminder's push data says); null for other kinds."
    )

    def get_title(self, item: FeedItem) -> str:
        return selectors.feed_item_text(item).subject

    def get_body(self, item: FeedItem) -> str:
        return selectors.feed_item_text(item).body

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reminder(self, item: FeedItem) -> str | None:
        return selectors.feed_item_reminder(item)

    @extend_schema_field(FollowUpSerializer(allow_null=True))
    def get_follow_up(self, item: FeedItem) -> dict[str, Any] | None:
        if item.follow_up is None:
            return None
        return dict(FollowUpSerializer(item.follow_up).data)


class FeedListApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        parameters=[
            OpenApiParameter("page", type=int, required=False),
            OpenApiParameter("page_size", type=int, required=False, description="1 to 200"),
        ],
        responses={
            200: page_schema("PaginatedFeedItemList", FeedItemSerializer(many=True)),
            400: OpenApiResponse(description="Bad page or page_size"),
        },
        tags=TAGS,
        description=(
            "Every message the patient was sent, or would have been sent with push or "
            "email turned off, newest first, with its read mark."
        ),
    )
    def get(self, request: Request) -> Response:
        user = _user(request)
        response, _ = paginate(
            request=request,
            view=self,
            items=selectors.feed_list(user=user),
            serializer_class=FeedItemSerializer,
        )
        audit_record(
            actor=user,
            action=AuditEvent.Action.READ,
            object_type="feed",
            patient=user.patient,
            context=audit_context(request),
        )
        return response


class FeedItemReadApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        request=None,
        responses={
            200: FeedItemSerializer,
            404: OpenApiResponse(description="Not one of your notifications"),
        },
        tags=TAGS,
        description="Mark one notification read. Marking it again keeps the first time.",
    )
    def post(self, request: Request, item_id: UUID) -> Response:
        user = _user(request)
        item = selectors.feed_item_get(user=user, item_id=item_id)
        feed.feed_item_read(user=user, item=item, context=audit_context(request))
        return Response(FeedItemSerializer(item).data)


class FollowUpAnswerApi(APIView):
    # A patient who owes a consent acceptance may still answer: a safety answer is never
    # held back behind a form (docs/safety-path.md, "Safety follow-up").
    permission_classes = [IsPatientAnyConsent]

    @extend_schema_serializer(component_name="FollowUpAnswer")
    class InputSerializer(StrictSerializer):
        seen_by = serializers.ChoiceField(choices=SafetyFollowUp.SeenBy.choices)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: FollowUpSerializer,
            400: OpenApiResponse(description="Not one of the choices; nothing stored"),
            404: OpenApiResponse(description="Not one of your follow-ups, or not asked yet"),
        },
        tags=TAGS,
        description=(
            'Answer "were you seen?" after emergency or urgent advice. The answer goes on '
            "the alert's timeline for the care team; a later different answer is added "
            "beside it, the same one again changes nothing."
        ),
    )
    def post(self, request: Request, follow_up_id: UUID) -> Response:
        user = _user(request)
        follow_up = follow_ups.follow_up_get(user=user, follow_up_id=follow_up_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        follow_up = follow_ups.follow_up_answer(
            user=user,
            follow_up=follow_up,
            seen_by=data.validated_data["seen_by"],
            context=audit_context(request),
        )
        return Response(FollowUpSerializer(follow_up).data)
