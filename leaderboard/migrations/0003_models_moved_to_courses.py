"""The models moved to ``courses`` (see its 0001): forget them here, keep their tables."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("submissions", "0007_challenge_in_courses"),
        ("leaderboard", "0002_semester_closed_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="semester",
                    name="course",
                ),
                migrations.RemoveField(
                    model_name="enrollment",
                    name="semester",
                ),
                migrations.RemoveField(
                    model_name="enrollment",
                    name="user",
                ),
                migrations.DeleteModel(
                    name="Challenge",
                ),
                migrations.DeleteModel(
                    name="Course",
                ),
                migrations.DeleteModel(
                    name="Semester",
                ),
                migrations.DeleteModel(
                    name="Enrollment",
                ),
            ],
            database_operations=[],
        ),
    ]
