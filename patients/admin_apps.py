"""Django's admin on our own site class. Its own module: an apps module with two
AppConfig classes would leave Django unsure which one is the patients app's."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class OperatorAdminConfig(AdminConfig):
    """Django's admin, whose `admin.site` asks operators for a second factor
    (patients/admin_site.py)."""

    default_site = "patients.admin_site.OperatorAdminSite"
