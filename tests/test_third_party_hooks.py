"""The two underscored hooks of third-party libraries the project overrides or calls
(docs/architecture.md § Django's private APIs, last paragraph): each one's shape, so that
an upgrade of drf-spectacular or pygal that changes it fails here, by name, rather than as
a schema that silently accepts unknown fields or a chart without its bands."""

from __future__ import annotations

import inspect
from datetime import date

import pygal
from drf_spectacular.openapi import AutoSchema

from dashboard.charts import Band


def test_drf_spectacular_still_maps_a_serializer_bypassing_extensions():
    # config/serializers.py StrictSerializerScheme: drf-spectacular's documented recipe
    # for an extension that amends the default mapping.
    parameters = inspect.signature(AutoSchema._map_serializer).parameters
    assert list(parameters)[:3] == ["self", "serializer", "direction"]
    assert "bypass_extensions" in parameters


def test_the_strict_schema_still_refuses_unknown_request_fields():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    requests = [
        component
        for name, component in schema["components"]["schemas"].items()
        if name.endswith("Request") and component.get("type") == "object"
    ]
    assert requests
    assert any(component.get("additionalProperties") is False for component in requests)


def test_pygal_still_draws_through_plot():
    # dashboard/charts.py draws its bands, markers and reference lines in `_plot`, before
    # pygal's own series.
    assert callable(pygal.DateLine._plot)
    assert list(inspect.signature(pygal.DateLine._plot).parameters) == ["self"]


def test_the_bands_reach_the_drawn_chart():
    from dashboard.charts import _AnnotatedDateLine

    chart = _AnnotatedDateLine()
    chart.bands = [Band(start=date(2026, 1, 2), end=date(2026, 1, 5), kind="flare", label="Flare")]
    chart.add("pain", [(date(2026, 1, day), day % 7) for day in range(1, 20)])
    svg = chart.render(is_unicode=True)
    assert 'data-kind="flare"' in svg
