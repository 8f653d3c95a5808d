"""Push devices: `/api/v1/me/devices/` for the app and the dashboard's browsers, and the
VAPID public key browsers subscribe with (docs/app-developers.md, "Push notifications")."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import page_schema, paginate
from config.serializers import StrictSerializer
from dashboard.views import second_factor_due
from notifications import devices
from notifications.channels.webpush import vapid_public_key
from notifications.models import Device
from patients.authentication import BearerTokenAuthentication
from patients.models import AuthToken, User

TAGS = ["devices"]


class DashboardSessionAuthentication(SessionAuthentication):
    """A clinician's dashboard session, on the same terms as the dashboard's pages: past
    the second factor when they have one or their clinic requires it (docs/security.md §
    Two-factor sign-in). CSRF is enforced, as for any session-authenticated write."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        django_request: HttpRequest = request._request
        user = getattr(django_request, "user", None)
        if user is None or not user.is_authenticated or not hasattr(user, "clinician"):
            return None
        if second_factor_due(django_request) is not None:
            return None
        self.enforce_csrf(request)
        return user, None


class DashboardSessionScheme(OpenApiAuthenticationExtension):
    target_class = "notifications.views_devices.DashboardSessionAuthentication"
    name = "dashboardSession"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A clinician's dashboard session (with the X-CSRFToken header).",
        }


class IsPatientOrClinician(BasePermission):
    """Whoever the service may push to. A patient who still owes a consent acceptance may
    register too: the app registers at start-up, before any screen."""

    message = "Only patients and clinicians can register devices."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user.is_authenticated and (hasattr(user, "patient") or hasattr(user, "clinician"))
        )


# The app signs in with its API token, the dashboard's browser with its session.
DEVICE_AUTHENTICATION: list[Any] = [BearerTokenAuthentication, DashboardSessionAuthentication]


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class WebPushKeysSerializer(StrictSerializer):
    p256dh = serializers.CharField(max_length=100, help_text="The browser's P-256 key, base64url.")
    auth = serializers.CharField(max_length=50, help_text="The 16-byte auth secret, base64url.")


class WebPushSubscriptionSerializer(StrictSerializer):
    endpoint = serializers.CharField(
        max_length=1024,
        help_text="The push service's https URL; only known push services are accepted.",
    )
    keys = WebPushKeysSerializer()


@extend_schema_serializer(component_name="PushDevice")
class DeviceOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    app_version = serializers.CharField()
    locale = serializers.CharField()
    time_zone = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    current = serializers.SerializerMethodField(
        help_text="Whether this is the device (sign-in) making the request."
    )

    def get_current(self, device: Device) -> bool:
        sign_in: devices.SignIn | None = self.context.get("sign_in")
        if sign_in is None:
            return False
        if sign_in.auth_token is not None:
            return bool(device.auth_token_id == sign_in.auth_token.pk)
        return device.session_id is not None and device.session_id == sign_in.session_key


def _sign_in(request: Request) -> devices.SignIn:
    if isinstance(request.auth, AuthToken):
        return devices.SignIn(auth_token=request.auth)
    return devices.SignIn(session_key=request.session.session_key)


class DeviceListCreateApi(APIView):
    authentication_classes = DEVICE_AUTHENTICATION
    permission_classes = [IsPatientOrClinician]

    class InputSerializer(StrictSerializer):
        platform = serializers.ChoiceField(choices=Device.Platform.choices)
        token = serializers.CharField(
            max_length=1024,
            required=False,
            help_text="`ios`: the APNs device token (hex); `android`: the FCM registration "
            "token. Not for `web`.",
        )
        subscription = WebPushSubscriptionSerializer(
            required=False,
            help_text="`web` only: the browser's PushSubscription (`subscription.toJSON()`).",
        )
        app_version = serializers.CharField(max_length=50, required=False, default="")
        locale = serializers.CharField(
            max_length=35, required=False, default="", help_text="BCP 47, e.g. `es-ES`."
        )
        time_zone = serializers.CharField(
            max_length=64, required=False, default="", help_text="IANA, e.g. `Europe/Madrid`."
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            web = attrs["platform"] == Device.Platform.WEB
            if web and "subscription" not in attrs:
                raise serializers.ValidationError({"subscription": ["Required for web."]})
            if web and "token" in attrs:
                raise serializers.ValidationError({"token": ["Not for web: send subscription."]})
            if not web and "token" not in attrs:
                raise serializers.ValidationError({"token": ["Required for ios and android."]})
            if not web and "subscription" in attrs:
                raise serializers.ValidationError({"subscription": ["For web only."]})
            return attrs

    @extend_schema(
        parameters=[
            OpenApiParameter("page", type=int, required=False),
            OpenApiParameter("page_size", type=int, required=False, description="1 to 200"),
        ],
        responses={
            200: page_schema("PaginatedPushDeviceList", DeviceOutputSerializer(many=True)),
            400: OpenApiResponse(description="Bad page_size"),
        },
        tags=TAGS,
        description="The caller's own registered push devices, newest first.",
    )
    def get(self, request: Request) -> Response:
        response, _ = paginate(
            request=request,
            view=self,
            items=devices.device_list(user=_user(request)),
            serializer_class=DeviceOutputSerializer,
            context={"sign_in": _sign_in(request)},
        )
        return response

    @extend_schema(
        request=InputSerializer,
        responses={
            201: DeviceOutputSerializer,
            200: OpenApiResponse(
                DeviceOutputSerializer,
                description="This sign-in's device was registered before: replaced.",
            ),
            400: OpenApiResponse(description="Invalid input; nothing stored"),
        },
        tags=TAGS,
        description=(
            "Register this signed-in device's push address. One per sign-in: registering "
            "again (a refreshed token) replaces it, and a token registered by another "
            "sign-in moves to this one. Deleted with the sign-in (logout, token revoked or "
            "expired) and when the push service reports it dead."
        ),
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        subscription = values.get("subscription")
        registration = devices.Registration(
            platform=values["platform"],
            token=subscription["endpoint"] if subscription else values["token"],
            p256dh=subscription["keys"]["p256dh"] if subscription else "",
            auth=subscription["keys"]["auth"] if subscription else "",
            app_version=values["app_version"],
            locale=values["locale"],
            time_zone=values["time_zone"],
        )
        sign_in = _sign_in(request)
        device, created = devices.device_register(
            user=_user(request),
            sign_in=sign_in,
            registration=registration,
            context=audit_context(request),
        )
        body = DeviceOutputSerializer(device, context={"sign_in": sign_in}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DeviceDeleteApi(APIView):
    authentication_classes = DEVICE_AUTHENTICATION
    permission_classes = [IsPatientOrClinician]

    @extend_schema(
        request=None,
        responses={204: None, 404: OpenApiResponse(description="Not one of your devices")},
        tags=TAGS,
        description="Stop pushing to one of the caller's devices.",
    )
    def delete(self, request: Request, device_id: UUID) -> Response:
        user = _user(request)
        device = devices.device_get(user=user, device_id=device_id)
        devices.device_delete(user=user, device=device, context=audit_context(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebPushKeyApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="WebPushKey")
    class OutputSerializer(serializers.Serializer[Any]):
        public_key = serializers.CharField(
            allow_null=True,
            help_text="The VAPID public key (base64url) for `pushManager.subscribe`'s "
            "`applicationServerKey`; null when this server does not send Web Push.",
        )

    @extend_schema(responses={200: OutputSerializer}, tags=TAGS)
    def get(self, request: Request) -> Response:
        key = settings.WEBPUSH_VAPID_PRIVATE_KEY
        return Response({"public_key": vapid_public_key(key) if key else None})
