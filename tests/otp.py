"""Two-factor helpers for tests: enrol a user as the dashboard does, and compute the code
their authenticator app shows now (django-otp's own TOTP, at the current time, which the
tests freeze and move with time-machine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from patients import two_factor
from patients.models import User

# A TOTP code is good for one 30-second step and once only: tests freeze the clock, and
# move it a step on (`next_step`) before using a fresh code.
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)


def code_for(device: TOTPDevice) -> str:
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


def enrol(user: User) -> tuple[TOTPDevice, list[str]]:
    """Set up an authenticator app and recovery codes; the code used is spent."""
    device = two_factor.totp_enrolment_start(user=user)
    return two_factor.totp_enrolment_confirm(user=user, code=code_for(device))


def next_step(frozen) -> None:
    frozen.shift(STEP)
