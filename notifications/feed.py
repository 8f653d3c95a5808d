"""Writes of the patient's feed: read marks (docs/app-developers.md, "Notifications
feed")."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from config.audit import AuditContext
from notifications.models import FeedItem
from patients.models import AuditEvent, User
from patients.services import audit_record

OBJECT_TYPE = "feed_item"


def feed_item_read(*, user: User, item: FeedItem, context: AuditContext | None = None) -> FeedItem:
    """Mark one of the patient's feed items read; marking it again keeps the first time
    (and writes nothing)."""
    with transaction.atomic():
        marked = FeedItem.objects.filter(pk=item.pk, read_at__isnull=True).update(
            read_at=timezone.now()
        )
        if marked:
            audit_record(
                actor=user,
                action=AuditEvent.Action.UPDATE,
                object_type=OBJECT_TYPE,
                object_id=item.pk,
                patient_id=item.patient_id,
                changes={"read": True},
                context=context,
            )
    item.refresh_from_db(fields=["read_at"])
    return item
