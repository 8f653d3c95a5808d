"""Forms of the template editor, the plan adjustment and the education pages
(docs/dashboard.md § Template editor). Plain Django forms and formsets: the pages are
server-rendered, with no script (the dashboard's Content-Security-Policy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.db.models import QuerySet

from patients.models import User
from programs import services
from programs.education import selectors as education_selectors
from programs.models import (
    CARD_BODY_MAX,
    DEFAULT_PAIN_CEILING,
    MAX_DURATION_MINUTES,
    MAX_HOLD_SECONDS,
    MAX_REPS,
    MAX_SETS,
    EducationCard,
    Exercise,
    Language,
    ProgramTemplate,
)

MAX_PHASES = 12
MAX_EXERCISES_PER_PHASE = 30


class TemplateForm(forms.Form):
    name = forms.CharField(label="Template name", max_length=200)
    condition = forms.CharField(label="Condition", max_length=200, required=False)
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    pain_ceiling = forms.IntegerField(
        label="Progression pain ceiling (0-10)",
        min_value=0,
        max_value=10,
        initial=DEFAULT_PAIN_CEILING,
        help_text="Highest pain during exercise that still counts towards moving on a phase.",
    )


class PhaseForm(forms.Form):
    name = forms.CharField(label="Phase name", max_length=120)
    goals = forms.CharField(label="Goals", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    length_weeks = forms.IntegerField(label="Planned weeks", min_value=1, max_value=52)
    cards = forms.ModelMultipleChoiceField(
        label="Education cards given with this phase",
        queryset=EducationCard.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, user: User, card_labels: Mapping[Any, str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        cards = self.fields["cards"]
        assert isinstance(cards, forms.ModelMultipleChoiceField)
        cards.queryset = education_selectors.assignable_cards(user=user).order_by("created_at")
        cards.label_from_instance = lambda obj: card_labels.get(obj.pk, str(obj))  # type: ignore[method-assign]


class DosageFields(forms.Form):
    sets = forms.IntegerField(label="Sets", min_value=1, max_value=MAX_SETS)
    reps = forms.IntegerField(label="Reps", min_value=1, max_value=MAX_REPS, required=False)
    hold_seconds = forms.IntegerField(
        label="Hold (s)", min_value=1, max_value=MAX_HOLD_SECONDS, required=False
    )
    duration_minutes = forms.IntegerField(
        label="Minutes", min_value=1, max_value=MAX_DURATION_MINUTES, required=False
    )
    sessions_per_week = forms.IntegerField(label="Per week", min_value=1, max_value=7)
    notes = forms.CharField(label="Notes", max_length=500, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and (errors := services.dosage_errors(data)):
            # One message, not one per unit field.
            self.add_error(None, next(iter(errors.values())))
        return data


class PrescribedForm(DosageFields):
    exercise = forms.ModelChoiceField(
        label="Exercise", queryset=Exercise.objects.none(), empty_label="Choose an exercise…"
    )
    field_order = ["exercise", *DosageFields.base_fields]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        exercise = self.fields["exercise"]
        assert isinstance(exercise, forms.ModelChoiceField)
        exercise.queryset = Exercise.objects.visible_to(user).order_by("name")


PhaseFormSet = forms.formset_factory(
    PhaseForm, extra=1, can_delete=True, max_num=MAX_PHASES, validate_max=True
)
PrescribedFormSet = forms.formset_factory(
    PrescribedForm, extra=1, can_delete=True, max_num=MAX_EXERCISES_PER_PHASE, validate_max=True
)


def _dosage_initial(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in ("sets", "reps", "hold_seconds",
            "duration_minutes", "sessions_per_week", "notes")}  # fmt: skip


class TemplateEditor:
    """The whole editor page as one form: the template's details, its phases (a formset,
    with a blank one to add) and each phase's exercises (a formset per phase, with a blank
    row to add). Posted together and saved in one service call, so a page with an error
    anywhere changes nothing."""

    def __init__(
        self, *, user: User, data: Mapping[str, Any] | None = None,
        template: ProgramTemplate | None = None,
    ) -> None:  # fmt: skip
        self.user = user
        labels = {item.card.pk: item.title for item in education_selectors.card_list(user=user)}
        header_initial: dict[str, Any] = {}
        phases_initial: list[dict[str, Any]] = []
        exercises_initial: list[list[dict[str, Any]]] = []
        if template is not None:
            header_initial = {
                "name": template.name,
                "condition": template.condition,
                "description": template.description,
                "pain_ceiling": template.pain_ceiling,
            }
            for phase in template.phases.all():
                phases_initial.append(
                    {
                        "name": phase.name,
                        "goals": phase.goals,
                        "length_weeks": phase.length_weeks,
                        "cards": list(phase.education_cards.all()),
                    }
                )
                exercises_initial.append(
                    [
                        {"exercise": item.exercise, **_dosage_initial(item)}
                        for item in phase.exercises.all()
                    ]
                )
        self.header = TemplateForm(data, prefix="t", initial=header_initial)
        self.phases = PhaseFormSet(
            data,
            prefix="phases",
            initial=phases_initial,
            form_kwargs={"user": user, "card_labels": labels},
        )
        self.exercises: list[Any] = []
        for index in range(len(self.phases.forms)):
            self.exercises.append(
                PrescribedFormSet(
                    data,
                    prefix=f"phase-{index}-exercises",
                    initial=exercises_initial[index] if index < len(exercises_initial) else [],
                    form_kwargs={"user": user},
                )
            )
        self.errors: list[str] = []

    @property
    def rows(self) -> list[tuple[int, Any, Any]]:
        return [(i + 1, form, self.exercises[i]) for i, form in enumerate(self.phases.forms)]

    def is_valid(self) -> bool:
        valid = self.header.is_valid() & self.phases.is_valid()
        for index, formset in enumerate(self.exercises):
            valid &= formset.is_valid()
            phase = self.phases.forms[index]
            used = [f for f in _kept(formset) if f.has_changed()]
            blank_phase = index >= self.phases.initial_form_count() and not phase.has_changed()
            if used and blank_phase:
                phase.add_error(None, "Give this phase a name and a length, or clear its rows.")
                valid = False
        return bool(valid)

    def cleaned(self) -> dict[str, Any]:
        """The service's arguments (after `is_valid`)."""
        phases = []
        for index, form in enumerate(self.phases.forms):
            if not _kept_index(self.phases, index):
                continue
            exercises = [
                {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
                for f in _kept(self.exercises[index])
            ]
            phases.append(
                {
                    "name": form.cleaned_data["name"],
                    "goals": form.cleaned_data.get("goals") or "",
                    "length_weeks": form.cleaned_data["length_weeks"],
                    "cards": list(form.cleaned_data.get("cards") or []),
                    "exercises": exercises,
                }
            )
        return {**self.header.cleaned_data, "phases": phases}


def _deleted(form: forms.Form) -> bool:
    return bool(getattr(form, "cleaned_data", {}).get("DELETE"))


def _kept_index(formset: Any, index: int) -> bool:
    """A row that counts: an existing one not marked for deletion, or a blank one filled in."""
    form = formset.forms[index]
    if _deleted(form) or not getattr(form, "cleaned_data", None):
        return False
    return bool(index < formset.initial_form_count() or form.has_changed())


def _kept(formset: Any) -> list[forms.Form]:
    return [f for i, f in enumerate(formset.forms) if _kept_index(formset, i)]


# --------------------------------------------------------------------------- one patient


class DosageRowForm(DosageFields):
    """One exercise of a patient's program, at the dosage in force today."""


DosageRowFormSet = forms.formset_factory(DosageRowForm, extra=0)


class PainCeilingForm(forms.Form):
    pain_ceiling = forms.IntegerField(
        label="Progression pain ceiling (0-10)", min_value=0, max_value=10
    )


class AssignTemplateForm(forms.Form):
    template = forms.ModelChoiceField(
        label="Program template", queryset=ProgramTemplate.objects.none(), empty_label="Choose…"
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        template = self.fields["template"]
        assert isinstance(template, forms.ModelChoiceField)
        template.queryset = ProgramTemplate.objects.visible_to(user).order_by("name")


# --------------------------------------------------------------------------- education


class CardTextForm(forms.Form):
    language = forms.ChoiceField(label="Language", choices=Language.choices)
    title = forms.CharField(label="Title", max_length=200)
    body = forms.CharField(
        label="Text (Markdown)",
        max_length=CARD_BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text="Markdown: **bold**, *italic*, lists, ## headings, [links](https://…). "
        "HTML, scripts and pictures are removed.",
    )


class CardCreateForm(CardTextForm):
    condition = forms.CharField(label="Condition (optional)", max_length=200, required=False)


class CardAssignForm(forms.Form):
    card = forms.ModelChoiceField(
        label="Education card", queryset=EducationCard.objects.none(), empty_label="Choose…"
    )

    def __init__(self, *args: Any, user: User, exclude: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = {item.card.pk: item.title for item in education_selectors.card_list(user=user)}
        field = self.fields["card"]
        assert isinstance(field, forms.ModelChoiceField)
        queryset: QuerySet[EducationCard] = (
            education_selectors.assignable_cards(user=user)
            .filter(pk__in=list(labels))
            .exclude(pk__in=list(exclude))
            .order_by("created_at")
        )
        field.queryset = queryset
        field.label_from_instance = lambda obj: labels.get(obj.pk, str(obj))  # type: ignore[method-assign]
