"""Registrations racing for one token settle without a unique violation (which would
also put the INSERT into the database server's log): the last one wins, one row."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from notifications.devices import Registration, SignIn, device_register
from notifications.models import Device
from patients.models import AuthToken

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "d4" * 32


def test_racing_registrations_of_one_token_leave_one_device(patient, other_patient):
    sign_ins = [
        (user, AuthToken.objects.create(user=user)[0])
        for user in (patient.user, other_patient.user, patient.user, other_patient.user)
    ]
    errors: list[BaseException] = []
    start = threading.Barrier(len(sign_ins))

    def register(user, auth_token) -> None:
        try:
            start.wait(30)
            for _ in range(5):
                device_register(
                    user=user,
                    sign_in=SignIn(auth_token=auth_token),
                    registration=Registration(platform="ios", token=TOKEN),
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=pair) for pair in sign_ins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert Device.objects.filter(token=TOKEN).count() == 1
