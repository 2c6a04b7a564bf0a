"""A standing keeps its best submission's headline figures (whatever the kind shows beside the
score) instead of a keypoints-only MSE column; a submission's drawn pictures are ``pictures``
(``figures`` are numbers everywhere else)."""

from django.db import migrations, models


def mse_to_headline(apps, schema_editor) -> None:
    Standing = apps.get_model("submissions", "Standing")
    for standing in Standing.objects.exclude(mse=None).only("pk", "mse").iterator():
        Standing.objects.filter(pk=standing.pk).update(headline={"mse": standing.mse})


def headline_to_mse(apps, schema_editor) -> None:
    Standing = apps.get_model("submissions", "Standing")
    for standing in Standing.objects.only("pk", "headline").iterator():
        mse = (standing.headline or {}).get("mse")
        if isinstance(mse, int | float):
            Standing.objects.filter(pk=standing.pk).update(mse=mse)


class Migration(migrations.Migration):
    dependencies = [
        ("submissions", "0007_challenge_in_courses"),
    ]

    operations = [
        migrations.AddField(
            model_name="standing",
            name="headline",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(mse_to_headline, headline_to_mse),
        migrations.RemoveField(model_name="standing", name="mse"),
        migrations.RenameField(model_name="submission", old_name="figures", new_name="pictures"),
    ]
