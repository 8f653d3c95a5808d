from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.i18n import activate_for_request, current_language
from config.pagination import page_schema, paginate
from config.serializers import StrictBooleanField, StrictSerializer
from patients import consent, selectors, services, two_factor
from patients.models import (
    HISTORY_FLAGS,
    AuditEvent,
    AuthToken,
    ConsentKind,
    Patient,
    User,
    validate_timezone,
)
from patients.permissions import IsClinician, IsPatient
from patients.restriction import RECORD_RESTRICTED_RESPONSE
from patients.throttling import ScopedThrottle, client_ip

# A patient's language: one of settings.LANGUAGES, or blank for "the phone's, else English".
LANGUAGE_CHOICES = [("", "The phone's language, else English"), *settings.LANGUAGES]


def _with_required_field(fields: Any, **kwargs: Any) -> Any:
    # `required` is also an attribute of every DRF field (a serializer is one): declared as
    # a class attribute it would shadow it, so it is added to the fields instead.
    fields["required"] = serializers.BooleanField(**kwargs)
    return fields


@extend_schema_serializer(component_name="AuthError")
class MfaRequiredSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    code = serializers.CharField(
        required=False, help_text='`"mfa_required"` when a second factor is needed.'
    )


class TokenOutputSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    role = serializers.ChoiceField(choices=["patient", "clinician"])


def _token_response(issued: services.IssuedToken, status_code: int) -> Response:
    data = TokenOutputSerializer(
        {"token": issued.token, "expires_at": issued.expires_at, "role": issued.role}
    ).data
    return Response(data, status=status_code)


# Every view nests an `InputSerializer`; the component names below keep them apart in the
# OpenAPI schema, where equal class names would otherwise collide.


class LoginApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        # Without an authenticator DRF would turn bad credentials into 403; the contract
        # says 401.
        return "Bearer"

    @extend_schema_serializer(component_name="Login")
    class InputSerializer(StrictSerializer):
        # 254: the email columns' width (a longer one would be a 500 on the failure row).
        email = serializers.EmailField(max_length=254)
        # Refused before the password hasher runs, and not counted as a failed sign-in:
        # no password this long can be set, so it is no guess at one.
        password = serializers.CharField(
            trim_whitespace=False, max_length=services.PASSWORD_MAX_LENGTH
        )
        otp = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=two_factor.CODE_MAX_LENGTH,
            help_text=(
                "The second factor of a clinician with two-factor sign-in set up: the "
                "6-digit code of their authenticator app, or one of their recovery codes "
                "(each works once). Ignored for accounts without two-factor sign-in."
            ),
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: TokenOutputSerializer,
            400: OpenApiResponse(description="Missing fields"),
            401: OpenApiResponse(
                response=MfaRequiredSerializer,
                description=(
                    'Bad credentials (`{"detail"}`), or `{"detail", "code": "mfa_required"}`: '
                    "the password was right but the account has two-factor sign-in and no "
                    "valid `otp` was sent (none, a wrong one, or a used recovery code). Ask "
                    "for a code and send the sign-in again with `otp`. A wrong `otp` counts "
                    "as a failed sign-in, as a wrong password does; none at all does not."
                ),
                examples=[
                    OpenApiExample(
                        "Second factor needed",
                        value={
                            "detail": "Enter the code from your authenticator app.",
                            "code": "mfa_required",
                        },
                        response_only=True,
                        status_codes=["401"],
                    )
                ],
            ),
            429: OpenApiResponse(description="Too many failed sign-ins"),
        },
        tags=["auth"],
        description=(
            "Sign in with email and password; a clinician with two-factor sign-in adds "
            "`otp`. Returns an API token for this device."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.auth_login(
            **serializer.validated_data,
            ip=client_ip(request),
            device=request.META.get("HTTP_USER_AGENT", ""),
            context=audit_context(request),
        )
        return _token_response(issued, status.HTTP_200_OK)


class NoBodySerializer(StrictSerializer):
    """No fields: an empty body or `{}` is fine, anything in it is a typo (a 400)."""


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        NoBodySerializer(data=request.data).is_valid(raise_exception=True)
        services.auth_logout(user=request.user, token=request.auth, context=audit_context(request))  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        tags=["auth"],
        description="Sign out of every device: all of the caller's tokens stop working.",
    )
    def post(self, request: Request) -> Response:
        NoBodySerializer(data=request.data).is_valid(raise_exception=True)
        services.auth_logout_all(user=request.user, context=audit_context(request))  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="Device")
class DeviceOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="public_id")
    device = serializers.CharField(help_text="The User-Agent the token was issued to.")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True)
    current = serializers.SerializerMethodField()

    def get_current(self, token: AuthToken) -> bool:
        current = self.context.get("current")
        return current is not None and token.pk == current.pk


class DeviceListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("page", type=int, required=False),
            OpenApiParameter("page_size", type=int, required=False, description="1 to 200"),
        ],
        responses={
            200: page_schema("PaginatedDeviceList", DeviceOutputSerializer(many=True)),
            400: OpenApiResponse(description="Bad page_size"),
        },
        tags=["auth"],
        description="The caller's own signed-in devices (one per unexpired token).",
    )
    def get(self, request: Request) -> Response:
        response, _ = paginate(
            request=request,
            view=self,
            items=selectors.auth_token_list(user=request.user),  # type: ignore[arg-type]
            serializer_class=DeviceOutputSerializer,
            context={"current": request.auth},
        )
        return response


class DeviceRevokeApi(APIView):
    @extend_schema(
        request=None,
        responses={204: None, 404: OpenApiResponse(description="Not one of your devices")},
        tags=["auth"],
        description="Sign one of the caller's devices out, e.g. a lost phone.",
    )
    def delete(self, request: Request, device_id: UUID) -> Response:
        token = selectors.auth_token_get(user=request.user, token_id=device_id)  # type: ignore[arg-type]
        services.auth_token_revoke(user=request.user, token=token, context=audit_context(request))  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterConsentSerializer(StrictSerializer):
    """A consent document the patient accepted when registering: its kind and the version
    they read (docs/app-developers.md)."""

    kind = serializers.ChoiceField(choices=ConsentKind.choices)
    version = serializers.IntegerField(min_value=1)


class RegisterApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "register"

    @extend_schema_serializer(component_name="Register")
    class InputSerializer(StrictSerializer):
        code = serializers.CharField(max_length=40)
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(trim_whitespace=False, max_length=200)
        consents = serializers.ListField(
            child=RegisterConsentSerializer(), required=False, max_length=10
        )

        def validate_consents(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kinds = [item["kind"] for item in value]
            if len(set(kinds)) != len(kinds):
                raise serializers.ValidationError(gettext("Each kind of document at most once."))
            return value

    @extend_schema(
        request=InputSerializer,
        responses={
            201: TokenOutputSerializer,
            400: OpenApiResponse(
                description=(
                    "Bad input; or `consent_required` (a required document of the clinic "
                    "is not in `consents`) or `consent_document_superseded` (a version "
                    "that is not the current one), both with `documents`: the clinic's "
                    "current documents (id, kind, version, title, body, required). "
                    "Nothing is created."
                )
            ),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.patient_register(
            **serializer.validated_data,
            device=request.META.get("HTTP_USER_AGENT", ""),
            context=audit_context(request),
        )
        return _token_response(issued, status.HTTP_201_CREATED)


class TimezoneField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=64, validators=[validate_timezone], **kwargs)


class DateOfBirthField(serializers.DateField):
    """A date strictly in the past: a birth date of today or later is a typo."""

    def to_internal_value(self, value: Any) -> date:
        parsed: date = super().to_internal_value(value)
        if parsed >= dj_timezone.now().date():
            raise serializers.ValidationError("Date of birth must be in the past.")
        return parsed


class InvitationCreateApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="InvitationCreate")
    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        first_name = serializers.CharField(max_length=150)
        last_name = serializers.CharField(max_length=150)
        date_of_birth = DateOfBirthField()
        timezone = TimezoneField()
        condition = serializers.CharField(max_length=200, required=False, allow_blank=True)
        affected_side = serializers.ChoiceField(
            choices=Patient.Side.choices, required=False, allow_null=True
        )
        language = serializers.ChoiceField(
            choices=LANGUAGE_CHOICES,
            required=False,
            help_text="What the patient reads the app and the invitation in; blank: their "
            "phone's language, else English.",
        )

    @extend_schema_serializer(component_name="Invitation")
    class OutputSerializer(serializers.Serializer[Any]):
        code = serializers.CharField()
        patient_id = serializers.UUIDField()
        expires_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 409: RECORD_RESTRICTED_RESPONSE},
        tags=["clinician: patients"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        issued = services.invitation_create(
            clinician=request.user.clinician,  # type: ignore[union-attr]
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            date_of_birth=data["date_of_birth"],
            timezone_name=data["timezone"],
            condition=data.get("condition") or "",
            affected_side=data.get("affected_side") or "",
            language=data.get("language") or "",
            context=audit_context(request),
        )
        out = self.OutputSerializer(
            {
                "code": issued.code,
                "patient_id": issued.invitation.patient_id,
                "expires_at": issued.invitation.expires_at,
            }
        )
        return Response(out.data, status=status.HTTP_201_CREATED)


class HistorySerializer(StrictSerializer):
    cancer = StrictBooleanField(required=False)
    immunosuppressed = StrictBooleanField(required=False)
    iv_drug_use = StrictBooleanField(required=False)
    osteoporosis = StrictBooleanField(required=False)
    long_term_steroids = StrictBooleanField(required=False)
    previous_spine_surgery = StrictBooleanField(required=False)


assert set(HistorySerializer().fields) == set(HISTORY_FLAGS)


class CareTeamMemberSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField(source="user.get_full_name")
    role = serializers.CharField()


class PatientConsentSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    version = serializers.IntegerField()
    title = serializers.CharField()

    def get_fields(self) -> Any:
        return _with_required_field(super().get_fields())

    state = serializers.ChoiceField(choices=["accepted", "declined", "withdrawn", "pending"])
    decided_at = serializers.DateTimeField(allow_null=True)


class PatientDetailOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.EmailField()
    date_of_birth = serializers.DateField()
    timezone = serializers.CharField()
    condition = serializers.CharField()
    affected_side = serializers.CharField()
    language = serializers.CharField()
    registered = serializers.SerializerMethodField()
    history = HistorySerializer()
    care_team = CareTeamMemberSerializer(many=True, source="care_team.all")
    created_at = serializers.DateTimeField()
    consent_owed = serializers.BooleanField(
        help_text="The patient must accept a required consent document before using the app."
    )
    consents = serializers.SerializerMethodField()
    restricted_at = serializers.DateTimeField(
        allow_null=True,
        help_text=(
            "Set once an erasure was approved: the account is closed and the record only "
            "kept (under the clinic's retention hold); it is on no list and gets no reminder."
        ),
    )

    def get_registered(self, patient: Patient) -> bool:
        return patient.user_id is not None

    @extend_schema_field(PatientConsentSerializer(many=True))
    def get_consents(self, patient: Patient) -> list[dict[str, Any]]:
        """The current version of each consent document and the patient's decision."""
        return [
            {
                "kind": s.document.kind,
                "version": s.document.version,
                "title": s.document.title,
                "required": s.document.required,
                "state": s.state,
                "decided_at": s.decided_at,
            }
            for s in consent.consent_state_list(patient=patient)
        ]


class PatientDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="PatientUpdate")
    class InputSerializer(StrictSerializer):
        first_name = serializers.CharField(max_length=150, required=False)
        last_name = serializers.CharField(max_length=150, required=False)
        date_of_birth = DateOfBirthField(required=False)
        timezone = TimezoneField(required=False)
        condition = serializers.CharField(max_length=200, required=False, allow_blank=True)
        affected_side = serializers.ChoiceField(choices=[*Patient.Side.values, ""], required=False)
        language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, required=False)
        history = HistorySerializer(required=False)

    @extend_schema(responses={200: PatientDetailOutputSerializer}, tags=["clinician: patients"])
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)  # type: ignore[arg-type]
        services.audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action=AuditEvent.Action.READ,
            object_type="patient",
            object_id=patient.pk,
            patient=patient,
            context=audit_context(request),
        )
        return Response(PatientDetailOutputSerializer(patient).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: PatientDetailOutputSerializer, 409: RECORD_RESTRICTED_RESPONSE},
        tags=["clinician: patients"],
    )
    def patch(self, request: Request, patient_id: UUID) -> Response:
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)  # type: ignore[arg-type]
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.patient_update(
            patient=patient,
            actor=request.user,  # type: ignore[arg-type]
            data=serializer.validated_data,
            context=audit_context(request),
        )
        patient = selectors.patient_get(user=request.user, patient_id=patient_id)  # type: ignore[arg-type]
        return Response(PatientDetailOutputSerializer(patient).data)


class MeSettingsApi(APIView):
    """The patient's own settings (docs/app-developers.md § Languages)."""

    permission_classes = [IsPatient]

    @extend_schema_serializer(component_name="PatientSettingsUpdate")
    class InputSerializer(StrictSerializer):
        language = serializers.ChoiceField(
            choices=LANGUAGE_CHOICES,
            required=False,
            help_text="`en` or `es`; blank to follow the phone's `Accept-Language`.",
        )

    @extend_schema_serializer(component_name="PatientSettings")
    class OutputSerializer(serializers.Serializer[Any]):
        language = serializers.CharField(
            help_text="The patient's choice; blank: the phone's `Accept-Language`, else English."
        )
        language_shown = serializers.CharField(
            help_text="The language this answer, and the app's texts now, are in."
        )

    def _answer(self, patient: Patient) -> Response:
        return Response(
            self.OutputSerializer(
                {"language": patient.language, "language_shown": current_language()}
            ).data
        )

    @extend_schema(responses={200: OutputSerializer}, tags=["patient: profile"])
    def get(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        patient = selectors.patient_for_user(user=user)
        services.audit_record(
            actor=user,
            action=AuditEvent.Action.READ,
            object_type="patient_settings",
            object_id=patient.pk,
            patient=patient,
            context=audit_context(request),
        )
        return self._answer(patient)

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, tags=["patient: profile"]
    )
    def patch(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        patient = selectors.patient_for_user(user=user)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_settings_update(
            patient=patient,
            actor=user,
            data=serializer.validated_data,
            context=audit_context(request),
        )
        # This answer is already in the new language.
        if patient.language:
            activate_for_request(request._request, patient.language)
        return self._answer(patient)
