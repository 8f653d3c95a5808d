from rest_framework import serializers

from .models import DailyLog


class DailyLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = DailyLog
        fields = [
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
        ]
        read_only_fields = ["id", "created_at"]
