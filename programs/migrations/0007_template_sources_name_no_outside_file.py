"""The seeded templates' `source` no longer names a specification file that ships outside
this repository; databases seeded before keep the same text without that reference. The
evidence tags ([S], [D]...) are explained in docs/clinical-record.md."""

from django.db import migrations

OLD_TO_NEW = {
    "Tonley et al. 2010, JOSPT; clinical-rules.md §7 [S/D]": "Tonley et al. 2010, JOSPT [S/D]",
    "NICE CG88/NG59; clinical-rules.md §7 [D]": "NICE CG88/NG59 [D]",
}


def forwards(apps, schema_editor):
    ProgramTemplate = apps.get_model("programs", "ProgramTemplate")
    for old, new in OLD_TO_NEW.items():
        ProgramTemplate.objects.filter(source=old).update(source=new)


class Migration(migrations.Migration):
    dependencies = [("programs", "0006_exercise_media")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
