"""Reads of exercise media, and the signed links each one is shown with."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from patients.models import Patient, User
from programs.media import links
from programs.models import Exercise, ExerciseMedia


@dataclass(frozen=True)
class MediaView:
    """One media item as the app and the dashboard show it (paths are site-relative)."""

    media: ExerciseMedia
    url: str
    poster_url: str | None
    expires_at: datetime

    @property
    def id(self) -> UUID:
        return self.media.pk

    @property
    def kind(self) -> str:
        return self.media.kind

    @property
    def content_type(self) -> str:
        return self.media.content_type


def media_view(media: ExerciseMedia) -> MediaView:
    file_link = links.link(media_id=media.pk, variant=links.FILE)
    poster = links.link(media_id=media.pk, variant=links.POSTER) if media.poster_name else None
    return MediaView(
        media=media,
        url=file_link.path,
        poster_url=poster.path if poster else None,
        expires_at=file_link.expires_at,
    )


def exercise_media_list(*, user: User, exercise: Exercise) -> list[ExerciseMedia]:
    """The media of a library exercise that a clinician sees, in order."""
    return list(ExerciseMedia.objects.visible_to(user).filter(exercise=exercise))


def media_counts(*, user: User, exercise_ids: list[UUID]) -> dict[UUID, int]:
    rows = (
        ExerciseMedia.objects.visible_to(user)
        .filter(exercise_id__in=exercise_ids)
        .values("exercise_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["exercise_id"]: row["n"] for row in rows}


def exercise_media_get(*, user: User, exercise: Exercise, media_id: UUID) -> ExerciseMedia:
    media = ExerciseMedia.objects.visible_to(user).filter(exercise=exercise, pk=media_id).first()
    if media is None:
        raise Http404
    found: ExerciseMedia = media
    return found


def media_for_exercises(
    *, clinic_id: UUID, exercise_ids: Iterable[UUID]
) -> dict[UUID, list[MediaView]]:
    """The media shown with these library exercises to a clinic's people (shared media and
    the clinic's own), by exercise, in order. The caller has scoped the exercises: the
    plan passes the patient's own."""
    by_exercise: dict[UUID, list[MediaView]] = defaultdict(list)
    for media in ExerciseMedia.objects.for_clinic(clinic_id).filter(
        exercise_id__in=list(exercise_ids)
    ):
        by_exercise[media.exercise_id].append(media_view(media))
    return by_exercise


def media_for_patient_plan(
    *, patient: Patient, exercise_ids: Iterable[UUID]
) -> dict[UUID, list[MediaView]]:
    return media_for_exercises(clinic_id=patient.clinic_id, exercise_ids=exercise_ids)


def with_media(exercises: QuerySet[Exercise], *, clinic_id: UUID) -> QuerySet[Exercise]:
    """`exercises` with the media a clinic's people see, fetched in one query per page."""
    return exercises.prefetch_related(
        Prefetch("media", queryset=ExerciseMedia.objects.for_clinic(clinic_id))
    )


def media_for_link(*, media_id: UUID) -> ExerciseMedia | None:
    """The media a valid signed link names (the signature is the caller's authority)."""
    media: ExerciseMedia | None = ExerciseMedia.objects.filter(pk=media_id).first()
    return media
