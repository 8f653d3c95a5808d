"""Daily logs and progress."""

from __future__ import annotations
