from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from programs.models import (
    BodyRegion,
    Category,
    Exercise,
    PrescribedExercise,
    ProgramTemplate,
    TemplatePhase,
)


class ExerciseFactory(DjangoModelFactory[Exercise]):
    class Meta:
        model = Exercise

    slug = factory.Sequence(lambda n: f"test-exercise-{n}")
    name = factory.Sequence(lambda n: f"Test exercise {n}")
    instructions = "Slowly, without pain."
    body_region = BodyRegion.HIP_GLUTEAL
    category = Category.STRENGTH
    sets = 3
    reps = 10
    sessions_per_week = 7


class ProgramTemplateFactory(DjangoModelFactory[ProgramTemplate]):
    class Meta:
        model = ProgramTemplate

    name = factory.Sequence(lambda n: f"Test program {n}")
    condition = "Sciatica"


class TemplatePhaseFactory(DjangoModelFactory[TemplatePhase]):
    class Meta:
        model = TemplatePhase

    template = factory.SubFactory(ProgramTemplateFactory)
    position = 1
    name = factory.Sequence(lambda n: f"Phase {n}")
    goals = "Get better."
    length_weeks = 2


class PrescribedExerciseFactory(DjangoModelFactory[PrescribedExercise]):
    class Meta:
        model = PrescribedExercise

    phase = factory.SubFactory(TemplatePhaseFactory)
    exercise = factory.SubFactory(ExerciseFactory)
    position = 1
    sets = 3
    reps = 10
    sessions_per_week = 7


def make_template(*, clinic=None, name=None, phases) -> ProgramTemplate:
    """`phases`: [(length_weeks, [sessions_per_week, ...]), ...] in order."""
    template = ProgramTemplateFactory.create(clinic=clinic, **({"name": name} if name else {}))
    for p, (weeks, sessions) in enumerate(phases, start=1):
        phase = TemplatePhaseFactory.create(
            template=template, position=p, name=f"Phase {p}", length_weeks=weeks
        )
        for e, per_week in enumerate(sessions, start=1):
            PrescribedExerciseFactory.create(
                phase=phase,
                position=e,
                sessions_per_week=per_week,
                exercise=ExerciseFactory.create(name=f"P{p} exercise {e}"),
            )
    return template
