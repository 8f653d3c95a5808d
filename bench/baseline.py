"""Deliberately plain baselines for the log POST, served by the same gunicorn.

- `PlainLogCreateApi`: what a first DRF tutorial writes. ModelSerializer, CreateAPIView,
  DRF's own `TokenAuthentication` (a plain-text key looked up in one query), one INSERT
  into the same `rehab_dailylog` table. No idempotency, no safety rules, no audit, no queue.
- `bare_json`: a Django view that parses the JSON body and answers JSON, touching neither
  DRF nor the database: the ceiling of the stack (gunicorn + Django middleware).

The product's endpoint does more on purpose (retry safety, inline safety advice, an audit
row, an evaluation queued on commit); the ratios say what that costs.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import generics, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated

from rehab.models import DailyLog


class PlainLogSerializer(serializers.ModelSerializer[Any]):
    class Meta:
        model = DailyLog
        fields = (
            "id",
            "date",
            "pain",
            "leg_pain",
            "back_pain",
            "worst_pain",
            "leg_pain_side",
            "function",
            "sleep",
            "notes",
            "safety",
            "created_at",
        )
        read_only_fields = ("id", "created_at")


class PlainLogCreateApi(generics.CreateAPIView[Any]):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = PlainLogSerializer
    throttle_classes: list[Any] = []

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        # Stamped evaluated in the same INSERT, so that the product's sweeper (and the
        # run's wait for the worker to drain) do not take baseline rows for owed work.
        serializer.save(
            patient=self.request.user.patient,  # type: ignore[union-attr]
            evaluated_at=timezone.now(),
        )


@csrf_exempt
@require_POST
def bare_json(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "date": body.get("date")}, status=201)
