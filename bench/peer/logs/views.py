from rest_framework import generics

from .models import DailyLog
from .serializers import DailyLogSerializer


class DailyLogCreate(generics.CreateAPIView):
    queryset = DailyLog.objects.all()
    serializer_class = DailyLogSerializer

    def perform_create(self, serializer):
        serializer.save(patient=self.request.user)
