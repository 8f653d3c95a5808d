from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse

from config.audit import audit_context
from config.exceptions import ApplicationError
from patients import services, two_factor
from patients.admin_site import OperatorTwoFactorFormMixin
from patients.forms import ThrottledSignInForm
from patients.models import (
    AuditEvent,
    AuthToken,
    Clinic,
    Clinician,
    Invitation,
    Patient,
    SignInFailure,
    User,
)


class OperatorLoginForm(  # type: ignore[misc]  # our password field wins, by design
    ThrottledSignInForm, OperatorTwoFactorFormMixin, AdminAuthenticationForm
):
    """The admin site's sign-in, under the same throttle as the API and the dashboard:
    operator accounts are the most powerful ones, and must not be guessable here. With a
    second factor (patients/admin_site.py)."""

    otp_token = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=two_factor.CODE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )

    audit_door = "admin"


admin.site.login_form = OperatorLoginForm


if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class AuditedAdmin(_AdminBase):
    """Operators' reads and changes of patient data are audited as the API's are
    (docs/security.md § Audit trail): a change list records one read per patient shown, an
    object's page one read, a change or addition made by a form one event (the actions
    call services, which audit themselves). Objects of no patient are not recorded."""

    # The lookup from this admin's model to the patient it belongs to; None for a model of
    # no patient (a clinic's consent documents, its retention period).
    audit_patient_path: str | None = "patient"

    def _audit_object_type(self) -> str:
        return f"admin:{self.model._meta.model_name}"

    def audit_patient_ids(self, pks: list[Any]) -> dict[Any, Any]:
        """{object pk: its patient's id (None for none)}, in one query."""
        if self.audit_patient_path is None:
            return dict.fromkeys(pks)
        rows = self.model._default_manager.filter(pk__in=pks).values_list(
            "pk", self.audit_patient_path
        )
        return dict(rows)

    def record_restricted(self, obj: Any) -> bool:
        """Whether `obj` belongs to a restricted record (docs/data-rights.md § Restriction):
        kept, not worked on, so its page is read-only, here as in the API."""
        if obj is None or obj.pk is None or self.audit_patient_path is None:
            return False
        path = self.audit_patient_path
        field = "restricted_at" if path == "pk" else f"{path}__restricted_at"
        return bool(
            self.model._default_manager.filter(pk=obj.pk, **{f"{field}__isnull": False}).exists()
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and not self.record_restricted(obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and not self.record_restricted(obj)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if response.status_code == 200 and changelist is not None:
            shown = self.audit_patient_ids([obj.pk for obj in changelist.result_list])
            patient_ids = [pid for pid in shown.values() if pid is not None]
            if patient_ids:
                services.audit_reads(
                    actor=request.user,  # type: ignore[arg-type]
                    object_type=self._audit_object_type(),
                    patient_ids=patient_ids,
                    context=audit_context(request),
                )
        return response

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().changeform_view(request, object_id, form_url, extra_context)
        shown = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and shown is not None:
            self._audit(request, shown, AuditEvent.Action.READ)
        return response

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, AuditEvent.Action.CREATE, changes={"admin": message})
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        # The admin's change message names the fields and inlines changed, not values.
        self._audit(request, obj, AuditEvent.Action.UPDATE, changes={"admin": message})
        return entry

    def _audit(self, request: HttpRequest, obj: Any, action: str, changes: Any = None) -> None:
        patient_id = self.audit_patient_ids([obj.pk]).get(obj.pk)
        if patient_id is None:
            return
        services.audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action=action,
            object_type=self._audit_object_type(),
            object_id=obj.pk,
            patient_id=patient_id,
            changes=changes if isinstance(changes, dict) else None,
            context=audit_context(request),
        )


@admin.register(User)
class UserAdmin(AuditedAdmin, BaseUserAdmin[Any]):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin[AuthToken]):
    list_display = ("token_key", "user", "device", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("user__email", "token_key")
    readonly_fields = ("digest", "token_key", "user", "created", "expiry", "device")
    date_hierarchy = "created"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ReadOnlyAdmin(AuditedAdmin):
    """No add, change or delete: rows written only through the services (and audited).
    What an operator views here is audited (AuditedAdmin)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ClinicianInline(admin.TabularInline[Clinician, Clinic]):
    """New clinicians may be added to a clinic here; an existing one is shown read-only
    (its role is changed, and audited, on the clinician's own page), and never deleted."""

    model = Clinician
    extra = 0
    raw_id_fields = ("user",)
    show_change_link = True
    can_delete = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin[Clinic]):
    list_display = ("name", "escalation_email", "two_factor_required", "created_at")
    list_filter = ("two_factor_required",)
    search_fields = ("name",)
    inlines = [ClinicianInline]


@admin.register(Clinician)
class ClinicianAdmin(admin.ModelAdmin[Clinician]):
    list_display = ("user", "clinic", "role", "created_at")
    list_filter = ("role", "clinic")
    list_select_related = ("user", "clinic")
    search_fields = ("user__email", "user__first_name", "user__last_name")
    raw_id_fields = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The clinic decides which patients a clinician sees (`patient_scope`), and the user
        # is who signs in as them: neither changes once the clinician exists. Moving a
        # clinician is refused rather than audited because an audit only tells afterwards:
        # the moment the row changed they would see the new clinic's patients, and they
        # would stay on the old clinic's care teams (its alerts still notifying them).
        # create_clinician refuses a move for the same reason; a clinician who changes
        # clinic gets a new account.
        return ("user", "clinic") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a clinician drops them from care teams and their notifications, and
        # blanks "created by" on the clinical record, unaudited: deactivate the user instead.
        return False

    def save_model(self, request: HttpRequest, obj: Clinician, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "role" in form.changed_data:
            # A clinic admin's role reaches further than a physiotherapist's.
            services.audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=AuditEvent.Action.UPDATE,
                object_type="clinician",
                object_id=obj.pk,
                changes={"role": {"from": form.initial.get("role"), "to": obj.role}},
                context=audit_context(request),
            )


class CareTeamFormSet(BaseInlineFormSet[Any, Patient, Any]):
    """A care team is of the patient's own clinic: its members get the patient's alert
    emails and notifications, so a clinician of another clinic must not be added here."""

    def clean(self) -> None:
        super().clean()
        patient = self.instance
        for form in self.forms:
            clinician = form.cleaned_data.get("clinician") if form.cleaned_data else None
            if clinician is None or form.cleaned_data.get("DELETE"):
                continue
            if clinician.clinic_id != patient.clinic_id:
                form.add_error(
                    "clinician", "This clinician works at another clinic than the patient's."
                )


class CareTeamInline(admin.TabularInline[Any, Patient]):
    model = Patient.care_team.through
    formset = CareTeamFormSet
    extra = 0
    verbose_name = "care team member"
    verbose_name_plural = "care team"
    raw_id_fields = ("clinician",)


@admin.register(Patient)
class PatientAdmin(AuditedAdmin, admin.ModelAdmin[Patient]):
    """The patient's details and history are read-only: clinicians change them through the
    API (`services.patient_update`, audited) and the safety rules read the history. An
    operator may still change the care team, and each change is audited."""

    audit_patient_path = "pk"

    list_display = ("last_name", "first_name", "email", "clinic", "condition", "created_at")
    list_filter = ("clinic", "affected_side", "history_cancer")
    list_select_related = ("clinic",)
    search_fields = ("first_name", "last_name", "email")
    date_hierarchy = "created_at"
    exclude = ("care_team",)
    readonly_fields = tuple(
        f.name
        for f in Patient._meta.get_fields()
        if f.concrete and not f.many_to_many and f.name != "id"
    )
    inlines = [CareTeamInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Patients come from invitations (`services.invitation_create`).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a patient would cascade to their whole clinical record (logs, alerts,
        # interventions, questionnaires), unaudited. Nothing clinical is deleted here.
        return False

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        # Every field is read-only: nothing of the patient's own row is written here.
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        patient: Patient = form.instance
        before = set(patient.care_team.values_list("pk", flat=True))
        super().save_related(request, form, formsets, change)
        after = set(patient.care_team.values_list("pk", flat=True))
        if before != after:
            services.audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=AuditEvent.Action.UPDATE,
                object_type="care_team",
                object_id=patient.pk,
                patient=patient,
                changes={
                    "added": sorted(str(pk) for pk in after - before),
                    "removed": sorted(str(pk) for pk in before - after),
                },
                context=audit_context(request),
            )


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin, admin.ModelAdmin[Invitation]):
    """Read-only: an edited email would send a patient's registration code to someone else,
    an edited expiry or revocation would revive a replaced code, an added row could carry a
    hash of a code the operator knows. Codes are issued and revoked by the actions below,
    through the services, which audit them."""

    list_display = ("email", "patient", "created_at", "expires_at", "used_at", "revoked_at")
    list_select_related = ("patient",)
    list_filter = ("used_at", "revoked_at")
    search_fields = ("email", "patient__last_name")
    date_hierarchy = "created_at"
    exclude = ("code_hash",)
    actions = ["resend", "revoke"]

    @admin.action(description="Resend a fresh code to the selected patients")
    def resend(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        # One email per patient: a new code revokes the patient's earlier ones, so two
        # selected invitations of one patient would send two codes of which one works.
        sent, patients = 0, set()
        for invitation in queryset.select_related("patient").order_by("-created_at"):
            if invitation.patient_id in patients or invitation.patient.user_id is not None:
                continue
            patients.add(invitation.patient_id)
            try:
                services.invitation_resend(
                    invitation=invitation,
                    actor=request.user,  # type: ignore[arg-type]
                    context=audit_context(request),
                )
            except ApplicationError as exc:  # registered since the list was read
                self.message_user(request, f"{invitation.email}: {exc.message}", messages.WARNING)
                continue
            sent += 1
        self.message_user(request, f"Sent {sent} new code(s).", messages.SUCCESS)

    @admin.action(description="Revoke the selected codes")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        # Patient by patient, as `resend`: a restricted record's codes are refused (and
        # reported), the other patients' are revoked.
        by_patient: dict[Any, list[Invitation]] = {}
        for invitation in queryset.order_by("email", "pk"):
            by_patient.setdefault(invitation.patient_id, []).append(invitation)
        revoked = 0
        for invitations in by_patient.values():
            try:
                revoked += services.invitation_revoke(
                    invitation_ids=[invitation.pk for invitation in invitations],
                    actor=request.user,  # type: ignore[arg-type]
                    context=audit_context(request),
                )
            except ApplicationError as exc:
                self.message_user(
                    request, f"{invitations[0].email}: {exc.message}", messages.WARNING
                )
        self.message_user(request, f"Revoked {revoked} code(s).", messages.SUCCESS)


@admin.register(SignInFailure)
class SignInFailureAdmin(admin.ModelAdmin[SignInFailure]):
    """The login throttle's counts: read-only, but an operator may delete an email's (or a
    client's) failures to lift a lock-out once the person is known to be who they say."""

    list_display = ("at", "email", "ip")
    search_fields = ("email", "ip")
    date_hierarchy = "at"
    readonly_fields = ("email", "ip", "at")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the audit trail is append-only, also for operators."""

    list_display = ("at", "actor_email", "action", "object_type", "object_id", "patient_id", "ip")
    list_filter = ("action", "object_type")
    search_fields = ("actor_email", "object_id", "path")
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
