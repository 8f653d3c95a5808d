"""Writes of exercise media: upload, remove, reorder. Each is audited and leaves nothing
behind when it fails (docs/architecture.md § Exercise media)."""

from __future__ import annotations

import logging
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models import Max

from config.audit import AuditContext
from patients.models import AuditEvent, Clinic, User
from patients.services import audit_record
from programs.media.files import Processed, process_image, process_upload
from programs.models import Exercise, ExerciseMedia

logger = logging.getLogger(__name__)

OBJECT_TYPE = "exercise_media"
MAX_ALT_TEXT = 300


def media_storage() -> Storage:
    return storages["media"]


def _name(exercise: Exercise, media: ExerciseMedia, suffix: str, extension: str) -> str:
    return f"exercise-media/{exercise.pk}/{media.pk}{suffix}.{extension}"


def _save(storage: Storage, name: str, processed: Processed) -> str:
    if processed.content is not None:
        return storage.save(name, ContentFile(processed.content))
    assert processed.source is not None
    processed.source.seek(0)
    return storage.save(name, File(processed.source))


def media_create(
    *,
    exercise: Exercise,
    clinic: Clinic | None,
    upload: IO[bytes],
    poster: IO[bytes] | None = None,
    alt_text: str = "",
    actor: User | None,
    context: AuditContext | None = None,
) -> ExerciseMedia:
    """Check, process and store an image or video of `exercise` for `clinic` (None: shared
    media, for operators and the seed). The kind comes from the bytes. A ValidationError
    (naming `file` or `poster`) stores nothing."""
    if len(alt_text) > MAX_ALT_TEXT:
        raise ValidationError({"alt_text": f"At most {MAX_ALT_TEXT} characters."})
    processed = process_upload(upload, field="file")
    poster_processed: Processed | None = None
    if poster is not None:
        if processed.kind != "video":
            raise ValidationError({"poster": "Only a video has a poster image."})
        poster_processed = process_image(poster, field="poster", poster=True)

    storage = media_storage()
    written: list[str] = []
    try:
        with transaction.atomic():
            media = ExerciseMedia(
                exercise=exercise,
                clinic=clinic,
                kind=processed.kind,
                content_type=processed.content_type,
                size_bytes=processed.size_bytes,
                sha256=processed.sha256,
                width=processed.width,
                height=processed.height,
                alt_text=alt_text,
                uploaded_by=actor if actor is not None and actor.is_authenticated else None,
            )
            # Locks the exercise row: two uploads at once get consecutive positions.
            Exercise.objects.select_for_update().filter(pk=exercise.pk).first()
            last = ExerciseMedia.objects.filter(exercise=exercise).aggregate(m=Max("position"))
            media.position = (last["m"] or 0) + 1
            media.file_name = _save(
                storage, _name(exercise, media, "", processed.extension), processed
            )
            written.append(media.file_name)
            if poster_processed is not None:
                media.poster_name = _save(
                    storage, _name(exercise, media, "-poster", "jpg"), poster_processed
                )
                written.append(media.poster_name)
            media.save(force_insert=True)
            audit_record(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                object_type=OBJECT_TYPE,
                object_id=media.pk,
                changes={
                    "exercise": str(exercise.pk),
                    "clinic": str(clinic.pk) if clinic is not None else None,
                    "kind": media.kind,
                    "content_type": media.content_type,
                    "size_bytes": media.size_bytes,
                    "sha256": media.sha256,
                    "poster": bool(media.poster_name),
                },
                context=context,
            )
    except BaseException:
        # The row rolled back: the files it named must not stay behind.
        for name in written:
            _delete_quietly(storage, name)
        raise
    return media


def _delete_quietly(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:  # a store that is down: an orphan file, never a failed request
        logger.warning("exercise media file left in storage after a failure", exc_info=True)


def _delete_all(storage: Storage, names: list[str]) -> None:
    for name in names:
        _delete_quietly(storage, name)


def media_delete(
    *, media: ExerciseMedia, actor: User | None, context: AuditContext | None = None
) -> None:
    """Remove the row, then its files once the removal has committed (a link already
    handed out answers 404 from then on)."""
    names = [name for name in (media.file_name, media.poster_name) if name]
    storage = media_storage()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            object_type=OBJECT_TYPE,
            object_id=media.pk,
            changes={"exercise": str(media.exercise_id), "kind": media.kind},
            context=context,
        )
        media.delete()
        transaction.on_commit(lambda: _delete_all(storage, names))


def media_move(
    *,
    media: ExerciseMedia,
    up: bool,
    among: list[ExerciseMedia],
    actor: User | None,
    context: AuditContext | None = None,
) -> None:
    """Swap `media` with its neighbour in `among` (the media of its exercise that the
    actor sees, in order); at either end nothing changes."""
    order = [item.pk for item in among]
    index = order.index(media.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(order):
        return
    order[index], order[other] = order[other], order[index]
    with transaction.atomic():
        # Renumbered 1..n in the new order: positions are only ever compared.
        for position, pk in enumerate(order, start=1):
            ExerciseMedia.objects.filter(pk=pk).update(position=position)
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            object_type=OBJECT_TYPE,
            object_id=media.pk,
            changes={"moved": "up" if up else "down"},
            context=context,
        )
