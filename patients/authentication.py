from __future__ import annotations

import binascii
import functools
from dataclasses import dataclass
from hmac import compare_digest
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.request import Request

from config.django_private import CompiledSelect, compile_select
from config.i18n import ACTIVATED_ATTRIBUTE, DEFAULT_LANGUAGE, activate_for_request


class BearerTokenAuthentication(TokenAuthentication):
    """django-rest-knox tokens (stored hashed, expiring, per device) sent as `Bearer`.

    Knox's own look-up costs three queries on every request: the token with its user,
    then every other token of that user (to delete the expired ones), and later the
    permission and scoping checks ask the user for its patient and clinician rows, one
    query each. This is the hottest path (every log POST), so the token comes back with
    the user and both role rows in one query, and expired tokens of other devices are
    purged by a beat task (`patients.tasks.purge_expired_tokens_task`) instead.
    Knox still hashes, compares and expires the tokens exactly as it does.
    """

    def authenticate(self, request: Request) -> Any:
        """As knox's; then a patient's profile language wins over their phone's
        Accept-Language, which config.middleware.ApiLanguageMiddleware activated (and
        ends after the response). The patient row came with the token: no query."""
        found = super().authenticate(request)
        patient = getattr(found[0], "patient", None) if found else None
        if patient is not None and patient.language:
            http_request = request._request
            english_already = patient.language == DEFAULT_LANGUAGE and not getattr(
                http_request, ACTIVATED_ATTRIBUTE, False
            )
            if not english_already:
                activate_for_request(http_request, patient.language)
        return found

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        msg = _("Invalid token.")
        text = token.decode("utf-8")
        for auth_token in _token_lookup().run(text[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                continue
            try:
                digest = hash_token(text)
            except (TypeError, binascii.Error) as exc:
                raise exceptions.AuthenticationFailed(msg) from exc
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user_and_token: tuple[Any, Any] = self.validate_user(auth_token)
                return user_and_token
        raise exceptions.AuthenticationFailed(msg)


def tokens_with_roles(token_key: str) -> QuerySet[Any]:
    """The tokens of a key, each with its user and the user's patient and clinician rows."""
    tokens: QuerySet[Any] = (
        get_token_model()
        .objects.filter(token_key=token_key)
        .select_related("user", "user__patient", "user__clinician")
    )
    return tokens


# The database function that reads a token with its user and role rows, planned once per
# connection (patients/migrations/0012_token_roles_function.py), and which of its row
# columns holds each table's row.
TOKEN_ROLES_FUNCTION = "patients_token_roles"  # noqa: S105 - a function name


def _function_columns() -> dict[str, str]:
    from patients.models import Clinician, Patient, User

    return {
        get_token_model()._meta.db_table: "token_row",
        User._meta.db_table: "user_row",
        Clinician._meta.db_table: "clinician_row",
        Patient._meta.db_table: "patient_row",
    }


@dataclass(frozen=True)
class CompiledTokenLookup:
    """`tokens_with_roles`, compiled to SQL once per process instead of on every request.

    Compiling that four-table, forty-column query cost more than running it: of the
    ~0.8 ms the ORM took per request, 0.45 went to building the query and its SQL. And
    PostgreSQL spent more planning it (~0.25 ms) than running it, on every request; the
    join now runs inside a PL/pgSQL function (`patients_token_roles`), planned once per
    connection, and the SQL here selects the ORM's columns, in the ORM's order, out of the
    rows it returns (a missing role row is a NULL row: NULL columns, as the LEFT JOIN gave).
    The SQL is run through Django's cursor (so it is logged and counted as ever), and the
    rows become objects through the ORM's own select_related machinery
    (`config.django_private.compile_select`), so the token, its user and the role rows,
    and the cached relations (a missing role row cached as absent) are what the
    queryset gives; tests/patients/test_authentication.py compares the two.
    """

    compiled: CompiledSelect
    sql: str

    @classmethod
    def compile(cls) -> CompiledTokenLookup | None:
        """None when the rows would need converting, or the ORM reads a table the function
        does not return (the ORM path handles those)."""
        compiled = compile_select(tokens_with_roles(""), DEFAULT_DB_ALIAS)
        if compiled.params != ("",) or compiled.needs_converters:
            return None
        rows = _function_columns()
        if not compiled.columns or any(table not in rows for table, _ in compiled.columns):
            return None
        quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
        select = ", ".join(
            f"(r.{rows[table]}).{quote(column)}" for table, column in compiled.columns
        )
        sql = f"SELECT {select} FROM {TOKEN_ROLES_FUNCTION}(%s) AS r"  # noqa: S608 - names from the models
        return cls(compiled=compiled, sql=sql)

    def run(self, token_key: str) -> list[Any]:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(self.sql, [token_key])
            rows = cursor.fetchall()
        return self.compiled.instances(get_token_model(), rows, DEFAULT_DB_ALIAS)


class _OrmTokenLookup:
    def run(self, token_key: str) -> list[Any]:
        return list(tokens_with_roles(token_key))


@functools.cache
def _token_lookup() -> CompiledTokenLookup | _OrmTokenLookup:
    return CompiledTokenLookup.compile() or _OrmTokenLookup()


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "patients.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
