"""Every use of Django's private (undocumented) APIs, in one place (docs/architecture.md
§ Django's private APIs).

Each function here leans on something Django does not promise to keep, for a reason its
docstring gives. tests/test_django_private.py asserts the shape and behaviour of each,
so that a Django upgrade that changes one fails there, by name, rather than as a wrong
answer somewhere in a view. Nothing outside this module may import from
`django.db.models.sql`, call a query's compiler or touch a model's `_state`.
"""

from __future__ import annotations

from django.db.models import Model


def relation_cached(instance: Model, name: str) -> bool:
    """Whether the one-to-one relation `name` of `instance` is already loaded (by
    `select_related`, or an earlier access), so that reading it costs no query.

    Why: the audit context names the caller's role only when it is known for free; asking
    `user.role` on an operator's admin request cost two queries per page (no clinician
    row, no patient row). The descriptors' `is_cached` is not documented.
    """
    descriptor = getattr(type(instance), name)
    return bool(descriptor.is_cached(instance))
