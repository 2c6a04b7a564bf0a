from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0003_gradebook_permission"),
    ]

    operations = [
        migrations.AddField(
            model_name="challenge",
            name="device",
            field=models.CharField(
                choices=[("cpu", "CPU"), ("gpu", "GPU")],
                default="cpu",
                help_text="GPU: graded only by workers with a GPU (GRADER_DEVICE=cuda:N)",
                max_length=8,
            ),
        ),
    ]
