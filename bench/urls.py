"""The product's URLs plus the benchmark baselines under /bench/ (bench settings only)."""

from __future__ import annotations

from typing import cast

from django.urls import URLPattern, URLResolver, path

from bench import baseline
from config.urls import handler404, handler500
from config.urls import urlpatterns as product_urlpatterns

urlpatterns: list[URLPattern | URLResolver] = [
    *cast(list[URLPattern | URLResolver], product_urlpatterns),
    path("bench/drf/logs/", baseline.PlainLogCreateApi.as_view(), name="bench-drf-logs"),
    path("bench/bare/", baseline.bare_json, name="bench-bare"),
]

__all__ = ["handler404", "handler500", "urlpatterns"]
