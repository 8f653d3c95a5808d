"""A patient's data as a FHIR R4 Bundle, validated by `fhir.resources`' R4B models.

R4B is R4 with a few fixes and is what EHRs that speak "R4" read; the package's default
models are R5, so only `fhir.resources.R4B` is used here. The mapping is in
docs/data-rights.md. Our own answers (everything but the pain NRS, which has a LOINC code)
use code systems under `<PUBLIC_BASE_URL>/fhir/CodeSystem/`, which this service owns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings

from rehab import scoring
from rights.selectors import PatientData

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

LOINC = "http://loinc.org"
PAIN_NRS_LOINC = "72514-3"  # Pain severity - 0-10 verbal numeric rating [Score] - Reported
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
# FHIR's value set for a language (Patient.communication.language) is BCP-47.
BCP47 = "urn:ietf:bcp:47"

# Derived resources (one Observation per answer of a log) get stable ids: the same log
# exports to the same ids every time, so an importer can update rather than duplicate.
_NAMESPACE = uuid.UUID("6f1e7b4e-2f55-4d39-9d62-2a8f6f0f6b1a")

# The daily log's answers other than pain, in our own code system.
DAILY_ANSWERS: tuple[tuple[str, str], ...] = (
    ("leg_pain", "Leg pain (0-10)"),
    ("back_pain", "Back pain (0-10)"),
    ("worst_pain", "Worst pain in the last 24 hours (0-10)"),
    ("function", "Function (0-10)"),
    ("leg_pain_side", "Side of leg pain"),
    ("sleep", "Sleep"),
    ("notes", "Notes"),
)


def system_base() -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/fhir"


def code_system(name: str) -> str:
    return f"{system_base()}/CodeSystem/{name}"


def questionnaire_url(instrument: str) -> str:
    return f"{system_base()}/Questionnaire/{instrument}"


def _derived_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def _ref(resource_id: object) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}"}


def _code(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], **({"text": display} if display else {})}


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _clean(value: Any) -> Any:
    """FHIR forbids empty strings, lists and objects: drop them (and None) recursively."""
    if isinstance(value, Mapping):
        out = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


def _typed_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, str):
        return {"valueString": value}
    return {"valueString": json.dumps(value, sort_keys=True, default=str)}


# --------------------------------------------------------------------------- resources


def bcp47(code: str) -> str:
    """Django's language code as a BCP-47 tag: `pt-br` -> `pt-BR`, `zh-hans` -> `zh-Hans`
    (a region in capitals, a script capitalised; RFC 5646 § 2.1.1)."""
    language, *subtags = code.split("-")
    cased = [
        tag.upper() if len(tag) == 2 else tag.title() if len(tag) == 4 else tag.lower()
        for tag in subtags
    ]
    return "-".join([language.lower(), *cased])


def _communication(code: str) -> list[dict[str, Any]]:
    """The patient's preferred language, when they chose one (blank: their phone's)."""
    if not code:
        return []
    names = dict(settings.LANGUAGES)
    return [{"language": _code(BCP47, bcp47(code), str(names.get(code, code))), "preferred": True}]


def _patient(data: PatientData) -> dict[str, Any]:
    p = data.patient
    communication = _communication(p.language)
    return {
        "resourceType": "Patient",
        "id": str(p.pk),
        "identifier": [{"system": f"{system_base()}/patient-id", "value": str(p.pk)}],
        "active": p.user is None or p.user.is_active,
        "name": [{"family": p.last_name, "given": [p.first_name]}],
        "telecom": [{"system": "email", "value": p.email}],
        "birthDate": p.date_of_birth.isoformat(),
        "managingOrganization": {"display": p.clinic.name},
        **({"communication": communication} if communication else {}),
    }


def _observation(
    *,
    resource_id: str,
    patient_id: str,
    day: date,
    code: dict[str, Any],
    value: dict[str, Any] | None = None,
    components: list[dict[str, Any]] | None = None,
    issued: datetime | None = None,
    amended: bool = False,
    category: str = "survey",
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "amended" if amended else "final",
        "category": [_code(OBSERVATION_CATEGORY, category)],
        "code": code,
        "subject": _ref(patient_id),
        "effectiveDateTime": day.isoformat(),
        "issued": _instant(issued),
        **(value or {}),
        "component": components or [],
    }


def _log_observations(log: Mapping[str, Any], patient_id: str) -> list[dict[str, Any]]:
    common = {
        "patient_id": patient_id,
        "day": log["date"],
        "issued": log["updated_at"],
        "amended": log["version"] > 1,
    }
    out = [
        _observation(
            resource_id=_derived_id(log["id"], "pain"),
            code=_code(LOINC, PAIN_NRS_LOINC, "Pain severity - 0-10 verbal numeric rating"),
            value={"valueInteger": log["pain"]},
            **common,
        )
    ]
    answers = [
        {
            "code": _code(code_system("daily-log"), name.replace("_", "-"), display),
            **_typed_value(log[name]),
        }
        for name, display in DAILY_ANSWERS
        if log.get(name) not in (None, "")
    ]
    if answers:
        # One panel per day rather than one Observation per answer: the answers were given
        # together, and a year exports as ~1,100 resources, not ~3,300 (docs/data-rights.md).
        out.append(
            _observation(
                resource_id=_derived_id(log["id"], "daily-answers"),
                code=_code(code_system("daily-log"), "daily-answers", "Daily log answers"),
                components=answers,
                **common,
            )
        )
    safety = log.get("safety") or {}
    if safety:
        out.append(
            _observation(
                resource_id=_derived_id(log["id"], "safety-check"),
                code=_code(code_system("daily-log"), "safety-check", "Daily safety check"),
                components=[
                    {
                        "code": _code(code_system("safety-check"), str(key)),
                        **_typed_value(value),
                    }
                    for key, value in sorted(safety.items())
                ],
                **common,
            )
        )
    return out


def _questionnaire(code: str) -> dict[str, Any]:
    instrument = scoring.INSTRUMENTS[code]
    items: list[dict[str, Any]]
    if code == scoring.PSFS:
        items = [
            {
                "linkId": "activity",
                "text": "Activity",
                "type": "group",
                "repeats": True,
                "item": [
                    {"linkId": "activity.name", "text": "Activity", "type": "string"},
                    {"linkId": "activity.score", "text": "Ability (0-10)", "type": "integer"},
                ],
            }
        ]
    elif code == scoring.SBI:
        items = [
            {"linkId": key, "text": label, "type": "integer"} for key, label in scoring.SBI_ITEMS
        ]
    else:
        items = [
            {"linkId": f"statement-{n}", "text": f"Statement {n}", "type": "boolean"}
            for n in range(1, scoring.RMDQ_ITEMS + 1)
        ]
    items.append({"linkId": "score", "text": "Score", "type": "decimal", "readOnly": True})
    return {
        "resourceType": "Questionnaire",
        "id": _derived_id("questionnaire", code, instrument.version),
        "url": questionnaire_url(code),
        "version": instrument.version,
        "name": code.upper(),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "item": items,
    }


def _response_items(code: str, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    if code == scoring.PSFS:
        return [
            {
                "linkId": "activity",
                "item": [
                    {"linkId": "activity.name", "answer": [{"valueString": a["activity"]}]},
                    {
                        "linkId": "activity.score",
                        **(
                            {"answer": [{"valueInteger": a["score"]}]}
                            if a.get("score") is not None
                            else {}
                        ),
                    },
                ],
            }
            for a in answers.get("activities", [])
        ]
    if code == scoring.SBI:
        return [
            {"linkId": key, "answer": [{"valueInteger": answers[key]}]}
            for key, _ in scoring.SBI_ITEMS
            if answers.get(key) is not None
        ]
    ticked = set(answers.get("ticked", []))
    unanswered = set(answers.get("unanswered", []))
    return [
        {"linkId": f"statement-{n}", "answer": [{"valueBoolean": n in ticked}]}
        for n in range(1, scoring.RMDQ_ITEMS + 1)
        if n not in unanswered
    ]


def _questionnaire_response(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    code = row["instrument"]
    items = _response_items(code, row["answers"] or {})
    # A JSON number, as FHIR's decimal is (a Decimal would be written as a string).
    items.append({"linkId": "score", "answer": [{"valueDecimal": float(row["score"])}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(row["id"]),
        "questionnaire": f"{questionnaire_url(code)}|{row['instrument_version']}",
        "status": "completed",
        "subject": _ref(patient_id),
        "authored": _instant(row["submitted_at"]),
        "item": items,
    }


def _procedure(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": str(row["id"]),
        "status": "completed",
        "code": _code(code_system("intervention-kind"), row["kind"], row["kind"].title()),
        "subject": _ref(patient_id),
        "performedDateTime": row["date"].isoformat(),
        "bodySite": [{"text": " ".join(filter(None, (row["side"], row["target"])))}],
        "usedCode": [{"text": row["agent"]}],
        "note": [{"text": row["description"]}],
    }


def _condition(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    ended = row["date_to"] is not None
    return {
        "resourceType": "Condition",
        "id": str(row["id"]),
        "clinicalStatus": _code(CONDITION_CLINICAL, "resolved" if ended else "active"),
        "code": {"text": row["name"]},
        "subject": _ref(patient_id),
        "onsetDateTime": row["date_from"].isoformat(),
        "abatementDateTime": row["date_to"].isoformat() if ended else None,
        "recordedDate": _instant(row["created_at"]),
        "note": [{"text": row["notes"]}],
    }


def _diagnostic_report(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": str(row["id"]),
        "status": "final",
        "category": [_code(DIAGNOSTIC_SERVICE, "RAD", "Radiology")],
        "code": _code(code_system("imaging-modality"), row["modality"], row["modality"].upper()),
        "subject": _ref(patient_id),
        "effectiveDateTime": row["date"].isoformat(),
        "issued": _instant(row["created_at"]),
        "conclusion": f"{row['body_region']}: {row['finding']}",
    }


def _provocative_test(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    return {
        **_observation(
            resource_id=str(row["id"]),
            patient_id=patient_id,
            day=row["performed_at"].date(),
            code=_code(code_system("provocative-test"), row["test"]),
            value={"valueString": row["result"]},
            issued=row["created_at"],
            category="exam",
        ),
        "effectiveDateTime": _instant(row["performed_at"]),
        "bodySite": {"text": row["side"]},
        "note": [{"text": row["notes"]}],
    }


def _flag(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "id": str(row["id"]),
        "status": "inactive" if row["status"] == "resolved" else "active",
        "category": [_code(code_system("alert-severity"), row["severity"])],
        "code": _code(code_system("safety-rule"), row["rule"], row["title"] or row["rule"]),
        "subject": _ref(patient_id),
        "period": {
            "start": _instant(row["opened_at"]),
            "end": _instant(row["resolved_at"]),
        },
    }


def _care_plan(
    row: Mapping[str, Any], exercises: list[Mapping[str, Any]], patient_id: str
) -> dict[str, Any]:
    active = row["ended_on"] is None
    return {
        "resourceType": "CarePlan",
        "id": str(row["id"]),
        "status": "active" if active else "completed",
        "intent": "plan",
        "title": row["name"],
        "description": row["condition"],
        "subject": _ref(patient_id),
        "period": {
            "start": row["start_date"].isoformat(),
            "end": row["ended_on"].isoformat() if not active else None,
        },
        "created": _instant(row["created_at"]),
        "activity": [
            {
                "detail": {
                    "code": {"text": ex["name"]},
                    "status": "in-progress" if active else "completed",
                    "description": ex["instructions"],
                }
            }
            for ex in exercises
        ],
    }


def bundle_dict(data: PatientData) -> dict[str, Any]:
    """The Bundle as plain JSON-ready data (dates as strings), not yet validated."""
    pid = str(data.patient.pk)
    s = data.sections
    resources: list[dict[str, Any]] = [_patient(data)]
    for log in s["daily_logs"]:
        resources.extend(_log_observations(log, pid))
    resources.extend(_provocative_test(row, pid) for row in s["provocative_tests"])
    instruments = sorted({row["instrument"] for row in s["questionnaire_responses"]})
    resources.extend(_questionnaire(code) for code in instruments)
    resources.extend(_questionnaire_response(row, pid) for row in s["questionnaire_responses"])
    resources.extend(_procedure(row, pid) for row in s["interventions"])
    resources.extend(_condition(row, pid) for row in s["diagnoses"])
    resources.extend(_diagnostic_report(row, pid) for row in s["imaging_findings"])
    resources.extend(_flag(row, pid) for row in s["alerts"])
    phases = {row["id"]: row["assignment_id"] for row in s["program_phases"]}
    by_assignment: dict[Any, list[Mapping[str, Any]]] = {}
    for ex in s["program_exercises"]:
        by_assignment.setdefault(phases.get(ex["phase_id"]), []).append(ex)
    resources.extend(
        _care_plan(row, by_assignment.get(row["id"], []), pid) for row in s["program_assignments"]
    )
    resources.extend(extra_resources(data))
    return {
        "resourceType": "Bundle",
        "id": _derived_id("export", pid, data.exported_at.isoformat()),
        "type": "collection",
        "timestamp": _instant(data.exported_at),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": _clean(r)} for r in resources],
    }


CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_STATUS = {"accepted": "active", "declined": "rejected", "withdrawn": "inactive"}


def _consent(row: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    accepted = row["decision"] == "accepted"
    return {
        "resourceType": "Consent",
        "id": _derived_id("consent", patient_id, row["document_id"]),
        "status": CONSENT_STATUS[row["decision"]],
        "scope": _code(
            CONSENT_SCOPE, "research" if row["kind"] == "research" else "patient-privacy"
        ),
        "category": [_code(LOINC, "59284-0", "Patient Consent")],
        "patient": _ref(patient_id),
        "dateTime": _instant(row["at"]),
        "policy": [{"uri": f"{system_base()}/consent-documents/{row['document_id']}"}],
        "policyRule": _code(code_system("consent-kind"), row["kind"], row["title"]),
        "provision": {"type": "permit" if accepted else "deny"},
    }


def extra_resources(data: PatientData) -> list[dict[str, Any]]:
    """One Consent per document version decided on, in its latest state (the JSON and
    CSV exports keep every decision)."""
    latest: dict[Any, Mapping[str, Any]] = {}
    for row in data.sections.get("consent_decisions", []):  # oldest first
        latest[row["document_id"]] = row
    return [_consent(row, str(data.patient.pk)) for row in latest.values()]


def bundle_build(data: PatientData) -> Bundle:
    """The validated Bundle: an invalid resource raises here, never reaches an importer."""
    return _bundle_model().model_validate(bundle_dict(data))


def bundle_json(data: PatientData) -> str:
    """The Bundle, validated by the R4B models, then written from the very dict they
    accepted: the models' own serialiser takes ~1.5 s for a year of logs, `json` 0.1 s."""
    bundle = bundle_dict(data)
    _bundle_model().model_validate(bundle)
    return json.dumps(bundle, separators=(",", ":"))


def _bundle_model() -> type[Bundle]:
    # Imported when an export is written, not with this module: the R4B models and
    # pydantic are ~12 MB of every process that imports the tasks (the workers' parents
    # included), and only an export uses them (docs/deployment.md § Memory).
    from fhir.resources.R4B.bundle import Bundle

    return Bundle
