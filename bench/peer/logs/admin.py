from django.contrib import admin

from .models import DailyLog

admin.site.register(DailyLog)
