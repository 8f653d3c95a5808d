"""The seeded education cards, in every language the product ships (English, Spanish).

Seeded as global cards (no clinic) by the migration `programs` 0005 and by `seed_demo`,
keyed by slug: seeding again adds nothing and never overwrites a version (a clinic's
edits are new versions of their own cards). Cards given with a seeded program name the
template phases they come with.

The Emergency Department card repeats the safety engine's own advice word for word
(`rehab/safety/rules.py` MESSAGES["ces"], docs/safety-rules.md RF-CES-01..05): the app
shows that text when a daily log reports these symptoms, and a patient must never read
two different instructions. tests/programs/test_education_content.py holds them equal.
"""

from __future__ import annotations

from typing import TypedDict


class SeedText(TypedDict):
    title: str
    body: str


class SeedCard(TypedDict):
    condition: str
    # (template slug, phase position): the seeded program phases it is given with.
    phases: list[tuple[str, int]]
    texts: dict[str, SeedText]


# The safety engine's advice for cauda equina symptoms (MESSAGES["ces"]), in English.
CES_ADVICE_EN = (
    "These symptoms can be a sign of pressure on the nerves at the base of your spine, "
    "which needs checking in hospital today. Go to your nearest Emergency Department "
    "now, or call the emergency number if you can't get there. Show them this screen. "
    "Don't wait for your physio to reply."
)
CES_ADVICE_ES = (
    "Estos síntomas pueden ser un signo de presión sobre los nervios de la base de la "
    "columna, que hay que revisar hoy en el hospital. Ve ahora al servicio de Urgencias "
    "más cercano, o llama al número de emergencias si no puedes llegar. Enséñales esta "
    "pantalla. No esperes a que tu fisioterapeuta te responda."
)
# The safety net after a fall (rehab/safety/rules.py FALL_REMINDER).
FALL_REMINDER_EN = (
    "If numbness, weakness, or bladder or bowel changes appear after your fall, go to the "
    "Emergency Department now."
)
FALL_REMINDER_ES = (
    "Si después de la caída notas adormecimiento, debilidad o cambios al orinar o al ir "
    "al baño, ve ahora al servicio de Urgencias."
)

CARDS: dict[str, SeedCard] = {
    "what-is-deep-gluteal-syndrome": {
        "condition": "Deep gluteal syndrome",
        "phases": [("deep-gluteal-syndrome", 1)],
        "texts": {
            "en": {
                "title": "What is deep gluteal syndrome?",
                "body": (
                    "Deep gluteal syndrome is pain deep in the buttock that can spread down "
                    "the back of the leg. The sciatic nerve runs through the buttock between "
                    "small hip muscles; when the nerve is squeezed or irritated there, it "
                    "hurts, much like sciatica from the back.\n\n"
                    "## What helps\n\n"
                    "- **Gentle stretches and nerve glides** first, to settle the nerve.\n"
                    "- **Strengthening the hip muscles** over the following weeks.\n"
                    "- **Building up sitting time** slowly: long sitting often makes it "
                    "worse at first.\n\n"
                    "Most people improve over 8 to 12 weeks with exercise. Your physio "
                    "moves you to the next phase when you are ready, not by the calendar.\n\n"
                    "Keep logging your pain every day: it is how your physio sees how you "
                    "are doing."
                ),
            },
            "es": {
                "title": "¿Qué es el síndrome glúteo profundo?",
                "body": (
                    "El síndrome glúteo profundo es un dolor en lo profundo de la nalga que "
                    "puede bajar por la parte de atrás de la pierna. El nervio ciático pasa "
                    "por la nalga entre pequeños músculos de la cadera; cuando el nervio "
                    "queda comprimido o irritado ahí, duele, de forma parecida a la ciática "
                    "que viene de la espalda.\n\n"
                    "## Lo que ayuda\n\n"
                    "- **Estiramientos suaves y deslizamientos del nervio** al principio, "
                    "para calmar el nervio.\n"
                    "- **Fortalecer los músculos de la cadera** en las semanas siguientes.\n"
                    "- **Aumentar poco a poco el tiempo sentado**: estar mucho rato sentado "
                    "suele empeorarlo al principio.\n\n"
                    "La mayoría de las personas mejora en 8 a 12 semanas con ejercicio. Tu "
                    "fisioterapeuta te pasa a la siguiente fase cuando estás preparado, no "
                    "según el calendario.\n\n"
                    "Sigue registrando tu dolor cada día: así tu fisioterapeuta ve cómo vas."
                ),
            },
        },
    },
    "after-prolotherapy": {
        "condition": "Deep gluteal syndrome",
        "phases": [],
        "texts": {
            "en": {
                "title": "What to expect after prolotherapy",
                "body": (
                    "Prolotherapy is an injection that sets off a small, controlled healing "
                    "reaction. It is normal for the area to feel **sore, stiff or a little "
                    "swollen for 2 to 3 days**, sometimes up to a week.\n\n"
                    "## In the first days\n\n"
                    "- Keep gently moving; walking is good.\n"
                    "- Pause the strengthening exercises for 2 to 3 days unless your physio "
                    "says otherwise; keep the gentle stretches if they feel comfortable.\n"
                    "- Ask your clinician which pain relief to use: anti-inflammatory "
                    "medicines may be advised against for a few days.\n\n"
                    "## Get help\n\n"
                    "A **temperature, redness, heat or swelling that spreads**, or pain that "
                    "keeps getting worse after the third day, needs checking: contact your "
                    "clinician today. A temperature with back pain after an injection needs "
                    "hospital assessment: go to the Emergency Department now.\n\n"
                    "Log your pain as usual, and tell the app about the injection when it "
                    "asks: it helps your physio read your pain scores."
                ),
            },
            "es": {
                "title": "Qué esperar después de la proloterapia",
                "body": (
                    "La proloterapia es una inyección que provoca una pequeña reacción de "
                    "curación controlada. Es normal que la zona esté **dolorida, rígida o un "
                    "poco hinchada durante 2 o 3 días**, a veces hasta una semana.\n\n"
                    "## Los primeros días\n\n"
                    "- Sigue moviéndote con suavidad; caminar es bueno.\n"
                    "- Deja los ejercicios de fuerza durante 2 o 3 días salvo que tu "
                    "fisioterapeuta te diga otra cosa; mantén los estiramientos suaves si "
                    "te resultan cómodos.\n"
                    "- Pregunta a tu clínico qué analgésico tomar: puede que te aconsejen no "
                    "tomar antiinflamatorios durante unos días.\n\n"
                    "## Pide ayuda\n\n"
                    "**Fiebre, enrojecimiento, calor o una hinchazón que se extiende**, o un "
                    "dolor que sigue empeorando después del tercer día, hay que revisarlos: "
                    "contacta hoy con tu clínico. Fiebre con dolor de espalda después de "
                    "una inyección necesita valoración en el hospital: ve ahora al servicio "
                    "de Urgencias.\n\n"
                    "Registra tu dolor como siempre e indica la inyección cuando la app te "
                    "lo pregunte: ayuda a tu fisioterapeuta a interpretar tus puntuaciones."
                ),
            },
        },
    },
    "pacing-and-flare-ups": {
        "condition": "",
        "phases": [("deep-gluteal-syndrome", 2), ("sciatica", 1)],
        "texts": {
            "en": {
                "title": "Pacing and flare-ups",
                "body": (
                    "Recovery is rarely a straight line. A **flare-up** is a few days of "
                    "more pain, often after doing more than usual. It is common and does "
                    "not mean you have damaged anything.\n\n"
                    "## Pacing\n\n"
                    "- Find how much of an activity you can do on a bad day, and start "
                    "there.\n"
                    "- Increase a little at a time, about every few days, not all at once "
                    "on a good day.\n"
                    "- Break long tasks up, and change position often.\n\n"
                    "## During a flare-up\n\n"
                    "- Keep moving gently; bed rest slows recovery.\n"
                    "- Do the easier exercises of your plan at a smaller dose, and log "
                    "them: note if you stopped because of pain.\n"
                    "- Go back to your usual dose over a few days as it settles.\n\n"
                    "Pain during exercise up to about 3 out of 10 that settles by the next "
                    "day is fine. Tell your physio if a flare-up lasts more than a week."
                ),
            },
            "es": {
                "title": "Dosificar la actividad y las crisis de dolor",
                "body": (
                    "La recuperación rara vez es una línea recta. Una **crisis de dolor** "
                    "son unos días con más dolor, a menudo después de hacer más de lo "
                    "habitual. Es frecuente y no significa que te hayas hecho daño.\n\n"
                    "## Dosificar\n\n"
                    "- Averigua cuánto puedes hacer de una actividad en un día malo y "
                    "empieza por ahí.\n"
                    "- Aumenta poco a poco, cada pocos días, no todo de golpe en un día "
                    "bueno.\n"
                    "- Divide las tareas largas y cambia de postura a menudo.\n\n"
                    "## Durante una crisis\n\n"
                    "- Sigue moviéndote con suavidad; el reposo en cama retrasa la "
                    "recuperación.\n"
                    "- Haz los ejercicios más fáciles de tu plan con una dosis menor y "
                    "regístralos: indica si paraste por dolor.\n"
                    "- Vuelve a tu dosis habitual en unos días, a medida que se calme.\n\n"
                    "Un dolor durante el ejercicio de hasta 3 sobre 10 que se calma al día "
                    "siguiente está bien. Avisa a tu fisioterapeuta si una crisis dura más "
                    "de una semana."
                ),
            },
        },
    },
    "after-a-fall": {
        "condition": "",
        "phases": [],
        "texts": {
            "en": {
                "title": "After a fall",
                "body": (
                    "Most falls cause bruises and a few sore days. Some need checking.\n\n"
                    "## Call the emergency number\n\n"
                    "If you **can't move safely**, stay still and call the emergency number.\n"
                    "\n## Go to the Emergency Department now\n\n"
                    "- Back pain after a **major fall or injury**.\n"
                    "- **Numbness, weakness or unsteady walking** after the fall.\n"
                    "- Numbness between your legs, or bladder or bowel changes.\n\n"
                    f"{FALL_REMINDER_EN}\n\n"
                    "## Contact your physio or GP today\n\n"
                    "- New or worse back pain after a fall or knock, especially if you have "
                    "thin bones (osteoporosis) or take steroid tablets.\n"
                    "- Any fall if you have had spine surgery.\n\n"
                    "Answer the fall question in your daily log: the app tells you what to "
                    "do, and your physio sees it."
                ),
            },
            "es": {
                "title": "Después de una caída",
                "body": (
                    "La mayoría de las caídas causan moratones y unos días de molestias. "
                    "Algunas hay que revisarlas.\n\n"
                    "## Llama al número de emergencias\n\n"
                    "Si **no puedes moverte con seguridad**, quédate quieto y llama al "
                    "número de emergencias.\n\n"
                    "## Ve ahora al servicio de Urgencias\n\n"
                    "- Dolor de espalda después de una **caída o lesión importante**.\n"
                    "- **Adormecimiento, debilidad o inestabilidad al caminar** después de "
                    "la caída.\n"
                    "- Adormecimiento entre las piernas, o cambios al orinar o al ir al "
                    "baño.\n\n"
                    f"{FALL_REMINDER_ES}\n\n"
                    "## Contacta hoy con tu fisioterapeuta o tu médico de familia\n\n"
                    "- Dolor de espalda nuevo o peor después de una caída o un golpe, sobre "
                    "todo si tienes los huesos frágiles (osteoporosis) o tomas corticoides "
                    "en pastillas.\n"
                    "- Cualquier caída si te han operado de la columna.\n\n"
                    "Responde a la pregunta sobre caídas en tu registro diario: la app te "
                    "dice qué hacer y tu fisioterapeuta lo ve."
                ),
            },
        },
    },
    "when-to-go-to-the-emergency-department": {
        "condition": "",
        "phases": [("deep-gluteal-syndrome", 1), ("sciatica", 1)],
        "texts": {
            "en": {
                "title": "When to go to the Emergency Department",
                "body": (
                    "Rarely, the nerves at the base of the spine get squeezed (cauda equina "
                    "syndrome). It needs treatment in hospital the same day to prevent "
                    "lasting damage. Know the signs:\n\n"
                    "- **Numbness or tingling between your legs**, around your back passage "
                    "or genitals (where you would sit on a saddle).\n"
                    "- **Changes in your bladder**: you can't pass urine, can't feel it, or "
                    "leak without knowing.\n"
                    "- **Changes in your bowel**: you can't control it or can't feel it.\n"
                    "- **Changes in sexual function**, such as loss of feeling.\n"
                    "- **Pain, numbness or weakness in both legs**.\n\n"
                    f"**{CES_ADVICE_EN}**\n\n"
                    "These signs are in your daily safety check: answer it honestly every "
                    "day. Nobody watches the alerts around the clock, so never wait for a "
                    "reply when you have them."
                ),
            },
            "es": {
                "title": "Cuándo ir al servicio de Urgencias",
                "body": (
                    "En raras ocasiones, los nervios de la base de la columna quedan "
                    "comprimidos (síndrome de cola de caballo). Hay que tratarlo en el "
                    "hospital el mismo día para evitar daños permanentes. Conoce las "
                    "señales:\n\n"
                    "- **Adormecimiento u hormigueo entre las piernas**, alrededor del ano o "
                    "de los genitales (donde te sentarías en una silla de montar).\n"
                    "- **Cambios al orinar**: no puedes orinar, no lo notas o se te escapa "
                    "sin darte cuenta.\n"
                    "- **Cambios al ir al baño**: no puedes controlarlo o no lo notas.\n"
                    "- **Cambios en la función sexual**, como pérdida de sensibilidad.\n"
                    "- **Dolor, adormecimiento o debilidad en las dos piernas**.\n\n"
                    f"**{CES_ADVICE_ES}**\n\n"
                    "Estas señales están en tu control de seguridad diario: respóndelo con "
                    "sinceridad cada día. Nadie vigila las alertas a todas horas, así que "
                    "nunca esperes una respuesta cuando las tengas."
                ),
            },
        },
    },
}


def seed_cards(apps: object) -> int:
    """Create the seeded cards and versions that are missing; returns how many cards were
    created. Works with a migration's historical models or the real ones (`apps`)."""
    EducationCard = apps.get_model("programs", "EducationCard")  # type: ignore[attr-defined]
    Version = apps.get_model("programs", "EducationCardVersion")  # type: ignore[attr-defined]
    TemplatePhase = apps.get_model("programs", "TemplatePhase")  # type: ignore[attr-defined]
    created = 0
    for slug, spec in CARDS.items():
        card, was_created = EducationCard.objects.get_or_create(
            clinic=None, slug=slug, defaults={"condition": spec["condition"]}
        )
        created += int(was_created)
        for language, text in spec["texts"].items():
            if not Version.objects.filter(card=card, language=language).exists():
                Version.objects.create(card=card, language=language, number=1, **text)
        # The seeded templates' phases are linked whenever they exist (re-created after a
        # flush, or seeded after the cards); adding a link twice changes nothing, and the
        # seeded templates cannot be edited (a clinic edits its copy).
        for template_slug, position in spec["phases"]:
            phase = TemplatePhase.objects.filter(
                template__clinic__isnull=True, template__slug=template_slug, position=position
            ).first()
            if phase is not None:
                card.template_phases.add(phase)
    return created
