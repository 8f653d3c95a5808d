"""Watch the password hasher: which passwords a request made it hash."""

from __future__ import annotations

from typing import Any

import pytest


def hashed_lengths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every password the (test settings') hasher is asked to hash."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    lengths: list[int] = []
    encode, verify = MD5PasswordHasher.encode, MD5PasswordHasher.verify

    def recording_encode(self: Any, password: str, *args: Any, **kwargs: Any) -> str:
        lengths.append(len(password))
        return encode(self, password, *args, **kwargs)

    def recording_verify(self: Any, password: str, encoded: str) -> bool:
        lengths.append(len(password))
        return verify(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "encode", recording_encode)
    monkeypatch.setattr(MD5PasswordHasher, "verify", recording_verify)
    return lengths
