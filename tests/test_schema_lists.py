"""Every list the API answers is a page (docs/app-developers.md), and says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_schema import _schema

pytestmark = pytest.mark.django_db


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _ok_schemas(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    out = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        if not operation or "200" not in operation["responses"]:
            continue
        content = operation["responses"]["200"].get("content", {})
        body = content.get("application/json", {}).get("schema")
        if body is None:
            continue
        parameters = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        out.append((path, _resolve(document, body), parameters))
    return out


def test_it_documents_no_list_as_a_bare_array(client):
    bare = [
        path for path, schema, _ in _ok_schemas(_schema(client)) if schema.get("type") == "array"
    ]
    assert bare == []


def test_it_documents_every_page_with_its_page_parameters(client):
    document = _schema(client)
    pages = [
        (path, parameters)
        for path, schema, parameters in _ok_schemas(document)
        if {"count", "next", "previous", "results"} <= set(schema.get("properties", {}))
    ]
    assert len(pages) >= 15  # the lists of every app are found, not an empty loop
    missing = [path for path, parameters in pages if not {"page", "page_size"} <= set(parameters)]
    assert missing == []
