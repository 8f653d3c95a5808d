"""Every text this app sends, in one place (the texts are the product's, the channels
only carry them). Each function takes the facts of one message and returns its subject
and body. No clinical detail leaves by email beyond a rule's id: links lead to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext


@dataclass(frozen=True)
class Text:
    subject: str
    body: str
    # Extra email headers (List-Unsubscribe); other channels ignore them.
    headers: Mapping[str, str] = field(default_factory=dict)


def alert_text(
    *,
    severity: str,
    rule: str,
    rule_version: int,
    first_name: str,
    last_initial: str,
    raised_at: datetime,
    link: str,
    escalation: bool,
) -> Text:
    if escalation:
        subject = f"[ESCALATED {severity.upper()}] {rule} not acknowledged"
        lead = (
            f"This {severity} alert has not been acknowledged in time and is escalated to "
            "you (RF-META-01)."
        )
    else:
        subject = f"[{severity.upper()}] {rule} for a patient needs review"
        lead = f"A new {severity} safety alert was raised for a patient in your care."
    body = (
        f"{lead}\n\nRule: {rule} (version {rule_version})\n"
        f"Patient: {first_name} {last_initial}.\n"
        f"Raised: {raised_at:%Y-%m-%d %H:%M} UTC\n\nReview it: {link}\n"
    )
    return Text(subject, body)


def invitation_text(
    *,
    clinic: str,
    first_name: str,
    email: str,
    code: str | None,
    expires_at: datetime,
    language: str = "",
) -> Text:
    """The invitation, in the patient's language (else English); without a code when the
    address already has an account."""
    with translation.override(language or "en"):
        subject = gettext("%(clinic)s invites you to track your rehab") % {"clinic": clinic}
        if code is None:
            # Registration makes a new account, which this address cannot have: no code,
            # but the way forward, told only to the address's owner.
            body = gettext(
                "Hello %(first_name)s,\n\n"
                "%(clinic)s has invited you to log your recovery in the rehab app, but this "
                "email address already has an account, and an account belongs to one "
                "clinic. Please give your clinic another email address to invite.\n\n"
                "If you were not expecting this, you can ignore this email."
            ) % {"first_name": first_name, "clinic": clinic}
            return Text(subject, body)
        body = gettext(
            "Hello %(first_name)s,\n\n"
            "%(clinic)s has invited you to log your recovery in the rehab app.\n"
            'Open the app, choose "I have a code" and enter:\n\n    %(code)s\n\n'
            "with this email address (%(email)s). The code works once and expires on "
            "%(expires)s.\n\n"
            "If you were not expecting this, you can ignore this email."
        ) % {
            "first_name": first_name,
            "clinic": clinic,
            "code": code,
            "email": email,
            # Translators: a date format (Django's `date` filter), e.g. 07 December 2026.
            "expires": date_format(expires_at, gettext("d F Y")),
        }
        return Text(subject, body)


def _unsubscribe_line(link: str | None) -> str:
    if not link:
        return ""
    return "\n" + gettext("To stop these emails, open: %(link)s") % {"link": link} + "\n"


def missed_log_reminder_text(
    *, first_name: str, missed_days: int, language: str = "", unsubscribe_link: str | None = None
) -> Text:
    # No clinical content: a nudge to open the app, where the safety check is. In the
    # patient's language, else English.
    with translation.override(language or "en"):
        text = Text(
            gettext("A quick check-in on how you are doing"),
            gettext(
                "Hello %(first_name)s,\n\n"
                "We have not had your daily log for %(missed)s days. It takes a minute, "
                "and it helps your physio follow how you are doing. Please open the app "
                "and fill in today's log, including the safety questions.\n\n"
                "If you have new numbness between your legs, bladder or bowel changes, or "
                "weakness in both legs, go to the Emergency Department now.\n"
            )
            % {"first_name": first_name, "missed": missed_days},
        )
        return Text(text.subject, text.body + _unsubscribe_line(unsubscribe_link))


@dataclass(frozen=True)
class ReminderWording:
    """A reminder's texts in one language, with the patient's name and the link still to
    fill in (`%(first_name)s`, `%(link)s`): worded once per kind and language, however
    many reminders a burst sends."""

    subject: str
    body: str
    unsubscribe_line: str


@cache
def reminder_wording(kind: str, language: str = "") -> ReminderWording:
    """A patient reminder's texts (notifications/reminders.py): no clinical content, in
    the patient's language, else English."""
    with translation.override(language or "en"):
        if kind == "questionnaire_due":
            subject = gettext("A questionnaire is waiting for you")
            body = gettext(
                "Hello %(first_name)s,\n\n"
                "Your clinic has asked you to fill in a short questionnaire. Please open "
                "the app to answer it before its window closes.\n"
            )
        elif kind == "exercise_day":
            subject = gettext("Today's exercises")
            body = gettext(
                "Hello %(first_name)s,\n\n"
                "Your exercises are planned for today. Open the app to see them and record "
                "what you did.\n"
            )
        else:
            subject = gettext("Time for today's log")
            body = gettext(
                "Hello %(first_name)s,\n\n"
                "It takes a minute: please open the app and fill in today's log, including "
                "the safety questions.\n"
            )
        line = "\n" + gettext("To stop these emails, open: %(link)s") + "\n"
        return ReminderWording(subject, body, line)


def reminder_text(
    *, kind: str, first_name: str, language: str = "", unsubscribe_link: str | None = None
) -> Text:
    """A patient reminder, with an unsubscribe link when emailed."""
    wording = reminder_wording(kind, language)
    body = wording.body % {"first_name": first_name}
    if unsubscribe_link:
        body += wording.unsubscribe_line % {"link": unsubscribe_link}
    return Text(wording.subject, body)


def alert_push_text(*, severity: str, rule: str, escalation: bool) -> Text:
    """The push about an alert, shown on a lock screen: no patient's name, the rule only;
    opening it leads to the alert page, which checks who may see it."""
    if escalation:
        return Text(
            f"[ESCALATED {severity.upper()}] {rule}",
            "An alert for a patient in your clinic has not been acknowledged in time.",
        )
    return Text(f"[{severity.upper()}] {rule}", "A patient in your care needs review.")


def missed_log_reminder_push_text(*, missed_days: int, language: str = "") -> Text:
    """The reminder's push: short, and nothing clinical on a lock screen."""
    with translation.override(language or "en"):
        return Text(
            gettext("A quick check-in"),
            gettext("We have not had your daily log for %(days)s days. It takes a minute.")
            % {"days": missed_days},
        )


def _follow_up_advice(severity: str) -> str:
    """The way forward, repeated, because the patient may not have gone yet (in the
    language active now)."""
    if severity == "emergency":
        return gettext("If you have not been seen yet, please go to the Emergency Department now.")
    return gettext(
        "If you have not been seen yet, please contact your GP or an urgent care clinic today."
    )


def follow_up_text(*, first_name: str, severity: str, language: str = "") -> Text:
    """Asked a few hours after the app showed emergency or urgent advice
    (docs/safety-path.md, "Safety follow-up"), in the patient's language (else English).
    It repeats the way forward, because the patient may not have gone yet."""
    with translation.override(language or "en"):
        advice = _follow_up_advice(severity)
        return Text(
            gettext("Were you seen?"),
            gettext(
                "Hello %(name)s, earlier the app advised you to get medical help. "
                "Were you seen? Please tell us in the app. %(advice)s"
            )
            % {"name": first_name, "advice": advice},
        )


def follow_up_email_text(*, first_name: str, severity: str, language: str = "") -> Text:
    """The follow-up's email, for a patient whose channels include email: the same
    question and advice as the push, answered in the app. A safety message, so no
    unsubscribe link (docs/safety-path.md, "Safety follow-up")."""
    with translation.override(language or "en"):
        question = follow_up_text(first_name=first_name, severity=severity, language=language)
        body = gettext(
            "Hello %(name)s,\n\n"
            "A few hours ago the app advised you to get medical help. Were you seen? Please "
            "open the app and answer: your care team sees your answer.\n\n"
            "%(advice)s\n\n"
            "This is a safety message about advice the app gave you. It is sent whatever "
            "your reminder settings say, and only once.\n"
        ) % {"name": first_name, "advice": _follow_up_advice(severity)}
        return Text(question.subject, body)


def generic_text(*, language: str = "") -> Text:
    """A feed item of a kind this version cannot word (written by a newer one)."""
    with translation.override(language or "en"):
        return Text(gettext("A message from your care team"), gettext("Open the app to see it."))
