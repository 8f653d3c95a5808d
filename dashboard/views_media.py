"""Exercise media in the dashboard: the exercise library, and each exercise's images and
videos, which the clinic's staff upload, order and remove (docs/architecture.md §
Exercise media).

Scoped like the library: a clinician sees the shared exercises and their clinic's own,
and of each the shared media and their clinic's; another clinic's exercise or media is a
404. Shared media (seeded, or added by operators in the admin) is shown but only the
admin changes it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.audit import audit_context
from dashboard.forms_media import MediaMoveForm, MediaUploadForm
from dashboard.views import _base_context, _clinician, clinician_required
from patients.models import Clinician
from programs import selectors as program_selectors
from programs.media import selectors, services
from programs.models import Exercise, ExerciseMedia


def _exercise(request: HttpRequest, exercise_id: UUID) -> Exercise:
    exercise = (
        program_selectors.exercise_list(user=_clinician(request)).filter(pk=exercise_id).first()
    )
    if exercise is None:
        raise Http404
    found: Exercise = exercise
    return found


def _clinic_member(request: HttpRequest) -> Clinician:
    clinician: Clinician = _clinician(request).clinician
    return clinician


@require_GET
@clinician_required
def exercise_library_view(request: HttpRequest) -> HttpResponse:
    user = _clinician(request)
    exercises = list(program_selectors.exercise_list(user=user))
    counts = selectors.media_counts(user=user, exercise_ids=[e.pk for e in exercises])
    return render(
        request,
        "dashboard/exercise_library.html",
        {
            **_base_context(request),
            "rows": [{"exercise": e, "media_count": counts.get(e.pk, 0)} for e in exercises],
        },
    )


def _media_page(
    request: HttpRequest, exercise: Exercise, form: MediaUploadForm, status: int = 200
) -> HttpResponse:
    clinic_id = _clinic_member(request).clinic_id
    items = [
        {"view": selectors.media_view(media), "own": media.clinic_id == clinic_id}
        for media in selectors.exercise_media_list(user=_clinician(request), exercise=exercise)
    ]
    return render(
        request,
        "dashboard/exercise_media.html",
        {
            **_base_context(request),
            "exercise": exercise,
            "items": items,
            "form": form,
            "image_max_mb": settings.MEDIA_IMAGE_MAX_BYTES // (1024 * 1024),
            "video_max_mb": settings.MEDIA_VIDEO_MAX_BYTES // (1024 * 1024),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@clinician_required
def exercise_media_view(request: HttpRequest, exercise_id: UUID) -> HttpResponse:
    exercise = _exercise(request, exercise_id)  # 404 for another clinic's exercise
    if request.method == "GET":
        return _media_page(request, exercise, MediaUploadForm())
    form = MediaUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _media_page(request, exercise, form, status=400)
    try:
        media = services.media_create(
            exercise=exercise,
            clinic=_clinic_member(request).clinic,
            upload=form.cleaned_data["file"],
            poster=form.cleaned_data.get("poster"),
            alt_text=form.cleaned_data.get("alt_text") or "",
            actor=_clinician(request),
            context=audit_context(request),
        )
    except ValidationError as exc:
        _form_errors(form, exc)
        return _media_page(request, exercise, form, status=400)
    messages.success(request, f"Added the {media.get_kind_display().lower()} to {exercise.name}.")
    return redirect("dashboard:exercise-media", exercise_id=exercise.pk)


def _form_errors(form: MediaUploadForm, exc: ValidationError) -> None:
    errors: dict[str, Any] = exc.message_dict if hasattr(exc, "error_dict") else {}
    if not errors:
        form.add_error(None, exc)
        return
    for field, messages_ in errors.items():
        form.add_error(field if field in form.fields else None, messages_)


def _own_media(request: HttpRequest, exercise: Exercise, media_id: UUID) -> ExerciseMedia:
    """Media of this clinic: shared media and other clinics' are not this page's to change
    (404, as for what is out of sight)."""
    media = selectors.exercise_media_get(
        user=_clinician(request), exercise=exercise, media_id=media_id
    )
    if media.clinic_id != _clinic_member(request).clinic_id:
        raise Http404
    return media


@require_POST
@clinician_required
def exercise_media_delete_view(
    request: HttpRequest, exercise_id: UUID, media_id: UUID
) -> HttpResponse:
    exercise = _exercise(request, exercise_id)
    media = _own_media(request, exercise, media_id)
    services.media_delete(media=media, actor=_clinician(request), context=audit_context(request))
    messages.success(request, f"Removed the {media.get_kind_display().lower()}.")
    return redirect("dashboard:exercise-media", exercise_id=exercise.pk)


@require_POST
@clinician_required
def exercise_media_move_view(
    request: HttpRequest, exercise_id: UUID, media_id: UUID
) -> HttpResponse:
    exercise = _exercise(request, exercise_id)
    media = _own_media(request, exercise, media_id)
    form = MediaMoveForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Choose up or down.", status=400, content_type="text/plain")
    clinic_id = _clinic_member(request).clinic_id
    among = [
        item
        for item in selectors.exercise_media_list(user=_clinician(request), exercise=exercise)
        if item.clinic_id == clinic_id
    ]
    services.media_move(
        media=media,
        up=form.cleaned_data["direction"] == "up",
        among=among,
        actor=_clinician(request),
        context=audit_context(request),
    )
    return redirect("dashboard:exercise-media", exercise_id=exercise.pk)
