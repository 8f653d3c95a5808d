from __future__ import annotations

from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "rights"
    verbose_name = "Data rights: exports, access log"
