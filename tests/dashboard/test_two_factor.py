"""The dashboard's two-factor sign-in: enrolment, the gate, recovery codes, turning off."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from patients import two_factor
from patients.models import AuditEvent, Clinic, SignInFailure
from rehab.demo import DEMO_PASSWORD, PHYSIO_EMAIL
from tests.factories import PASSWORD
from tests.otp import code_for, enrol, next_step

pytestmark = pytest.mark.django_db

LOGIN = "/dashboard/login/"
CASELOAD = "/dashboard/"
SETUP = "/dashboard/two-factor/setup/"
VERIFY = "/dashboard/two-factor/verify/"
OVERVIEW = "/dashboard/two-factor/"
RECOVERY = "/dashboard/two-factor/recovery-codes/"
DISABLE = "/dashboard/two-factor/disable/"


def _codes_shown(response) -> list[str]:
    return re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())


@pytest.fixture
def enrolled(clinician, frozen):
    device, codes = enrol(clinician.user)
    next_step(frozen)
    return device, codes


# --------------------------------------------------------------------------- enrolment


def test_it_enrols_a_clinician_and_shows_the_recovery_codes_once(web, clinician, frozen):
    page = web.get(SETUP)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    device = TOTPDevice.objects.get(user=clinician.user, confirmed=False)
    content = page.content.decode()
    assert two_factor.totp_secret(device) in content
    assert "otpauth://totp/" in content
    assert "<svg" in content
    # A reload shows the same secret: the phone may be scanning it.
    assert two_factor.totp_secret(device) in web.get(SETUP).content.decode()

    done = web.post(SETUP, {"code": code_for(device)})
    assert done.status_code == 200
    codes = _codes_shown(done)
    assert len(codes) == two_factor.RECOVERY_CODE_COUNT
    device.refresh_from_db()
    assert device.confirmed
    assert sorted(
        StaticToken.objects.filter(device__user=clinician.user).values_list("token", flat=True)
    ) == sorted(codes)
    assert AuditEvent.objects.filter(
        actor=clinician.user, action="create", object_type="two_factor"
    ).exists()
    # This session passed its second factor by enrolling; the overview shows no codes.
    assert web.get(CASELOAD).status_code == 200
    overview = web.get(OVERVIEW)
    assert b"10 unused recovery codes" in overview.content
    assert not _codes_shown(overview)
    # Once set up, the set-up page does not show a secret again.
    assert web.get(SETUP)["Location"] == OVERVIEW


def test_it_refuses_a_wrong_first_code_and_enrols_nothing(web, clinician, frozen):
    web.get(SETUP)
    device = TOTPDevice.objects.get(user=clinician.user)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"
    response = web.post(SETUP, {"code": wrong})
    assert response.status_code == 400
    assert b"That code is not right" in response.content
    device.refresh_from_db()
    assert not device.confirmed
    assert not StaticDevice.objects.filter(user=clinician.user).exists()
    assert not two_factor.two_factor_enrolled(user=clinician.user)


# --------------------------------------------------------------------------- the gate


def test_it_lets_a_clinician_in_with_a_password_when_the_clinic_does_not_require_it(web, clinician):
    assert clinician.clinic.two_factor_required is False
    assert web.get(CASELOAD).status_code == 200


def test_it_sends_a_clinician_to_enrol_when_the_clinic_requires_it(web, clinician, patient):
    Clinic.objects.filter(pk=clinician.clinic_id).update(two_factor_required=True)
    page = f"/dashboard/patients/{patient.pk}/"
    response = web.get(page)
    assert response.status_code == 302
    assert response["Location"] == f"{SETUP}?next=%2Fdashboard%2Fpatients%2F{patient.pk}%2F"
    # No patient data was shown, so nothing was read.
    assert not AuditEvent.objects.filter(action="read").exists()
    # Nor can a form be posted past it.
    assert web.post(DISABLE, {"code": "000000"}).status_code == 302
    assert web.get(SETUP).status_code == 200


def test_it_asks_an_enrolled_clinician_for_a_code_after_the_password(client, clinician, enrolled):
    device, _ = enrolled
    signed_in = client.post(LOGIN, {"username": clinician.user.email, "password": PASSWORD})
    assert signed_in["Location"] == CASELOAD
    gate = client.get(CASELOAD)
    assert gate.status_code == 302
    assert gate["Location"] == f"{VERIFY}?next=%2Fdashboard%2F"
    form = client.get(gate["Location"])
    assert form.status_code == 200
    assert b'name="next" value="/dashboard/"' in form.content

    passed = client.post(VERIFY, {"code": code_for(device), "next": CASELOAD})
    assert passed.status_code == 302
    assert passed["Location"] == CASELOAD
    assert client.get(CASELOAD).status_code == 200
    assert AuditEvent.objects.filter(
        actor=clinician.user, object_type="dashboard_session", changes__second_factor="totp"
    ).exists()


def test_it_asks_an_enrolled_clinician_even_where_the_clinic_does_not_require_it(web, enrolled):
    assert web.get(CASELOAD)["Location"].startswith(VERIFY)


def test_it_counts_wrong_codes_as_failed_sign_ins_and_blocks_after_ten(web, clinician, enrolled):
    device, _ = enrolled
    wrong = web.post(VERIFY, {"code": "000000" if code_for(device) != "000000" else "111111"})
    assert wrong.status_code == 400
    assert b"That code is not right" in wrong.content
    assert SignInFailure.objects.filter(email=clinician.user.email).count() == 1
    for _ in range(9):
        web.post(VERIFY, {"code": "wrongcod"})
    blocked = web.post(VERIFY, {"code": code_for(device)})
    assert blocked.status_code == 400
    assert b"Too many failed sign-ins" in blocked.content
    assert web.get(CASELOAD).status_code == 302


def test_it_accepts_a_recovery_code_once_at_the_second_step(clinician, enrolled):
    _, codes = enrolled
    first, second = Client(), Client()
    for session in (first, second):
        session.force_login(clinician.user)
    assert first.post(VERIFY, {"code": codes[0]})["Location"] == CASELOAD
    assert first.get(CASELOAD).status_code == 200
    reused = second.post(VERIFY, {"code": codes[0]})
    assert reused.status_code == 400
    assert second.get(CASELOAD).status_code == 302


# --------------------------------------------------------------------------- recovery codes, off


def test_it_makes_new_recovery_codes_and_the_old_ones_stop_working(
    web, clinician, enrolled, frozen
):
    device, old = enrolled
    web.post(VERIFY, {"code": code_for(device)})
    response = web.post(RECOVERY)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new = _codes_shown(response)
    assert len(new) == two_factor.RECOVERY_CODE_COUNT
    assert not set(new) & set(old)
    assert two_factor.two_factor_verify(user=clinician.user, code=old[0]) is None
    next_step(frozen)
    assert two_factor.two_factor_verify(user=clinician.user, code=new[0]) is not None
    # The session, verified by the app, is still verified.
    assert web.get(CASELOAD).status_code == 200


def test_it_turns_two_factor_off_only_with_a_current_code(web, clinician, enrolled, frozen):
    device, codes = enrolled
    web.post(VERIFY, {"code": code_for(device)})
    next_step(frozen)
    refused = web.post(DISABLE, {"code": "wrongcod"}, follow=True)
    assert b"That code is not right" in refused.content
    assert two_factor.two_factor_enrolled(user=clinician.user)

    next_step(frozen)
    done = web.post(DISABLE, {"code": codes[1]}, follow=True)
    assert b"Two-factor sign-in is off" in done.content
    assert not TOTPDevice.objects.filter(user=clinician.user).exists()
    assert not StaticDevice.objects.filter(user=clinician.user).exists()
    assert AuditEvent.objects.filter(
        actor=clinician.user, action="delete", object_type="two_factor"
    ).exists()
    # Password alone again, where the clinic does not require two factors.
    assert web.get(CASELOAD).status_code == 200


# --------------------------------------------------------------------------- scope


def test_it_never_shows_or_changes_another_clinicians_devices(
    web, other_web, clinician, other_clinic_clinician, enrolled
):
    device, codes = enrolled
    # Bob's pages show his own state: nothing set up.
    overview = other_web.get(OVERVIEW)
    assert b"Off: your sign-in needs only your password." in overview.content
    assert two_factor.totp_secret(device).encode() not in other_web.get(SETUP).content
    # Alice's codes do nothing for Bob, and are not spent.
    other_web.post(DISABLE, {"code": codes[0]})
    other_web.post(RECOVERY)
    assert TOTPDevice.objects.filter(user=clinician.user, confirmed=True).count() == 1
    assert sorted(
        StaticToken.objects.filter(device__user=clinician.user).values_list("token", flat=True)
    ) == sorted(codes)
    assert not StaticDevice.objects.filter(user=other_clinic_clinician.user).exists()
    # Bob's own set-up makes a device of his, never touches Alice's.
    assert TOTPDevice.objects.filter(user=other_clinic_clinician.user, confirmed=False).exists()


def test_it_keeps_patients_and_operators_out_of_the_two_factor_pages(patient):
    assert patient.user is not None
    session = Client()
    session.force_login(patient.user)
    for url in (OVERVIEW, SETUP, VERIFY):
        assert session.get(url).status_code == 403
    assert not TOTPDevice.objects.exists()


def test_it_sends_anonymous_visitors_to_sign_in(client):
    for url in (OVERVIEW, SETUP, VERIFY):
        assert client.get(url)["Location"].startswith(f"{LOGIN}?next=")


# --------------------------------------------------------------------------- the clinic setting


@pytest.mark.parametrize("default", [True, False])
def test_a_new_clinic_takes_the_deployments_default(default):
    with override_settings(MFA_REQUIRED_DEFAULT=default):
        clinic = Clinic.objects.create(name=f"New clinic {default}")
    clinic.refresh_from_db()
    assert clinic.two_factor_required is default


@override_settings(MFA_REQUIRED_DEFAULT=False)  # as with `make run` (DJANGO_DEBUG=true)
def test_the_demo_physiotherapist_signs_in_with_the_password_under_make_run(client, capsys):
    call_command("seed_demo")
    assert "Two-factor sign-in: not required" in capsys.readouterr().out
    signed_in = client.post(LOGIN, {"username": PHYSIO_EMAIL, "password": DEMO_PASSWORD})
    assert signed_in["Location"] == CASELOAD
    assert client.get(CASELOAD).status_code == 200


def test_it_shows_no_navigation_on_a_404_before_the_second_factor(web, enrolled):
    response = web.get("/dashboard/no-such-page/")
    assert response.status_code == 404
    assert b"Sign out" not in response.content
    assert b"/dashboard/alerts/" not in response.content
