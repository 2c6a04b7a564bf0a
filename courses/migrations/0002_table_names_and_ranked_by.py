"""Tables take the app's name, and a challenge names the figure it ranks by instead of a
segmentation-only switch: ``use_pooled_accuracy`` becomes ``ranked_by = "pooled_accuracy"``."""

from django.db import migrations, models


def pooled_to_ranked_by(apps, schema_editor) -> None:
    Challenge = apps.get_model("courses", "Challenge")
    Challenge.objects.filter(use_pooled_accuracy=True).update(ranked_by="pooled_accuracy")


def ranked_by_to_pooled(apps, schema_editor) -> None:
    Challenge = apps.get_model("courses", "Challenge")
    Challenge.objects.filter(ranked_by="pooled_accuracy").update(use_pooled_accuracy=True)


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_initial"),
        ("leaderboard", "0003_models_moved_to_courses"),
    ]

    operations = [
        migrations.AddField(
            model_name="challenge",
            name="ranked_by",
            field=models.CharField(
                blank=True,
                help_text="the figure that ranks and passes; empty: the kind's usual score",
                max_length=32,
            ),
        ),
        migrations.RunPython(pooled_to_ranked_by, ranked_by_to_pooled),
        migrations.RemoveField(model_name="challenge", name="use_pooled_accuracy"),
        migrations.AlterModelTable(name="challenge", table=None),
        migrations.AlterModelTable(name="course", table=None),
        migrations.AlterModelTable(name="enrollment", table=None),
        migrations.AlterModelTable(name="semester", table=None),
    ]
