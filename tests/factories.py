from __future__ import annotations

import datetime as dt

import factory
from factory.django import DjangoModelFactory

from patients.models import Clinic, Clinician, Patient, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)


class ClinicFactory(DjangoModelFactory[Clinic]):
    class Meta:
        model = Clinic
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    escalation_email = factory.Sequence(lambda n: f"escalation{n}@clinic.example.com")


class ClinicianFactory(DjangoModelFactory[Clinician]):
    class Meta:
        model = Clinician

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
    role = Clinician.Role.PHYSIOTHERAPIST


class PatientFactory(DjangoModelFactory[Patient]):
    class Meta:
        model = Patient
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
    email = factory.SelfAttribute("user.email")
    first_name = factory.SelfAttribute("user.first_name")
    last_name = factory.SelfAttribute("user.last_name")
    date_of_birth = dt.date(1975, 5, 17)
    timezone = "Europe/London"
    condition = "Sciatica (L5 radiculopathy)"
    affected_side = Patient.Side.LEFT

    @factory.post_generation
    def care_team(self, create: bool, extracted: list[Clinician] | None, **kwargs: object) -> None:
        if create and extracted:
            self.care_team.add(*extracted)
