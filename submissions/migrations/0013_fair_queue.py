# Indexes for the fair claim (a student's running and recent uploads) and the throughput.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0005_course_policies"),
        ("submissions", "0012_fingerprints_copies"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="gradingrun",
            index=models.Index(fields=["finished_at"], name="run_finished"),
        ),
        migrations.AddIndex(
            model_name="gradingrun",
            index=models.Index(fields=["started_at"], name="run_started"),
        ),
        migrations.AddIndex(
            model_name="submission",
            index=models.Index(fields=["enrollment", "status"], name="sub_enrol_status"),
        ),
        migrations.AddIndex(
            model_name="submission",
            index=models.Index(fields=["enrollment", "finished_at"], name="sub_enrol_finished"),
        ),
    ]
