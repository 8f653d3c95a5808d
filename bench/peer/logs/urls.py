from django.urls import path

from . import views

urlpatterns = [
    path("logs/", views.DailyLogCreate.as_view()),
]
