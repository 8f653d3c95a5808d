import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models

score = [MaxValueValidator(10)]


class DailyLog(models.Model):
    """The product's daily-log columns, in the plainest model."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    date = models.DateField()
    pain = models.PositiveSmallIntegerField(validators=score)
    leg_pain = models.PositiveSmallIntegerField(null=True, blank=True, validators=score)
    back_pain = models.PositiveSmallIntegerField(null=True, blank=True, validators=score)
    worst_pain = models.PositiveSmallIntegerField(null=True, blank=True, validators=score)
    leg_pain_side = models.CharField(max_length=5, null=True, blank=True)
    function = models.PositiveSmallIntegerField(null=True, blank=True, validators=score)
    sleep = models.CharField(max_length=24, null=True, blank=True)
    notes = models.TextField(blank=True, max_length=2000)
    safety = models.JSONField(default=dict)
    safety_advice = models.JSONField(null=True, blank=True)
    safety_reminder = models.TextField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluated_version = models.PositiveIntegerField(null=True, blank=True)
    evaluation_attempts = models.PositiveSmallIntegerField(default=0)
    evaluation_failed_at = models.DateTimeField(null=True, blank=True)
    evaluation_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "date"], name="one_log_per_day"),
        ]
