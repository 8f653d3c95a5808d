from __future__ import annotations

import pytest
from django.test import Client, override_settings

from patients.models import AuditEvent, Clinician, Patient
from tests.factories import PASSWORD, ClinicFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/dashboard/login/"


def test_it_sends_anonymous_visitors_to_the_login_page_and_back(client, clinician, patient):
    page = f"/dashboard/patients/{patient.pk}/"
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={page}"

    form = client.get(response["Location"])
    assert form.status_code == 200
    assert b'<label for="id_username">Email</label>' in form.content
    assert f'name="next" value="{page}"'.encode() in form.content

    response = client.post(
        LOGIN, {"username": clinician.user.email, "password": PASSWORD, "next": page}
    )
    assert response.status_code == 302
    assert response["Location"] == page
    assert client.get(page).status_code == 200
    assert AuditEvent.objects.filter(
        actor=clinician.user, action="login", object_type="dashboard_session"
    ).exists()


def test_it_lands_on_the_caseload_without_a_next_page(client, clinician):
    response = client.post(LOGIN, {"username": clinician.user.email, "password": PASSWORD})
    assert response["Location"] == "/dashboard/"


def test_it_ignores_a_next_page_on_another_site(client, clinician):
    response = client.post(
        LOGIN,
        {"username": clinician.user.email, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/dashboard/"


def test_it_refuses_a_wrong_password(client, clinician):
    response = client.post(LOGIN, {"username": clinician.user.email, "password": "nope"})
    assert response.status_code == 200
    assert b"Email or password is incorrect." in response.content
    assert "_auth_user_id" not in client.session


def test_it_refuses_patients_at_login_with_a_clear_message(client, patient: Patient):
    assert patient.user is not None
    response = client.post(LOGIN, {"username": patient.user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert b"This sign-in is for clinicians. Patients use the app" in response.content
    assert "_auth_user_id" not in client.session


def test_it_refuses_operators_without_a_clinical_role_at_login(client):
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    response = client.post(LOGIN, {"username": operator.email, "password": PASSWORD})
    assert b"operators use the admin site" in response.content


def test_it_answers_403_to_a_signed_in_patient(client, patient, alert):
    assert patient.user is not None
    client.force_login(patient.user)
    for url in ("/dashboard/", f"/dashboard/patients/{patient.pk}/", "/dashboard/alerts/"):
        response = client.get(url)
        assert response.status_code == 403
        assert b"This dashboard is for clinicians" in response.content
    response = client.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {"note": "mine now"})
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"


def test_it_answers_403_to_an_operator_signed_in_to_the_admin(client):
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client.force_login(operator)
    assert client.get("/dashboard/").status_code == 403


def test_it_signs_out_with_a_post_only(web: Client, clinician: Clinician):
    assert web.get("/dashboard/logout/").status_code == 405
    response = web.post("/dashboard/logout/", follow=True)
    assert response.redirect_chain == [(LOGIN, 302)]
    assert b"You have signed out." in response.content
    assert web.get("/dashboard/").status_code == 302
    assert AuditEvent.objects.filter(actor=clinician.user, action="logout").exists()


def test_it_needs_a_csrf_token_to_sign_in(clinician):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN, {"username": clinician.user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@override_settings(THROTTLE_RATES={"login": "3/15min", "register": "20/hour", "logs": "600/hour"})
def test_it_counts_failed_sign_ins_towards_the_apis_limit(client, clinician):
    for _ in range(3):
        client.post(LOGIN, {"username": clinician.user.email, "password": "guess"})
    response = client.post(LOGIN, {"username": clinician.user.email, "password": PASSWORD})
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("login", [LOGIN, "/admin/login/"])
def test_it_never_locks_the_owner_out_through_failures_from_other_addresses(client, db, login):
    user = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    Clinician.objects.create(
        user=user, clinic=ClinicFactory.create(), role=Clinician.Role.CLINIC_ADMIN
    )
    for i in range(12):
        client.post(login, {"username": user.email, "password": "guess"}, REMOTE_ADDR=f"10.7.0.{i}")
    response = client.post(
        login, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="10.7.1.1"
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_it_refuses_a_password_over_1024_characters_before_hashing_it(
    client, clinician, monkeypatch
):
    from patients.models import SignInFailure
    from tests.patients.hashing import hashed_lengths

    hashed = hashed_lengths(monkeypatch)
    response = client.post(LOGIN, {"username": clinician.user.email, "password": "x" * 1025})
    assert response.status_code == 200
    assert b"at most 1024 characters" in response.content
    assert "_auth_user_id" not in client.session
    assert hashed == []
    assert not SignInFailure.objects.exists()
