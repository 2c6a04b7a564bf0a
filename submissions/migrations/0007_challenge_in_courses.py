"""The foreign keys now point at ``courses``; the columns and constraints stay as they are."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_initial"),
        ("submissions", "0006_standing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="regradebatch",
                    name="challenge",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="regrade_batches",
                        to="courses.challenge",
                    ),
                ),
                migrations.AlterField(
                    model_name="standing",
                    name="challenge",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="courses.challenge",
                    ),
                ),
                migrations.AlterField(
                    model_name="standing",
                    name="enrollment",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="courses.enrollment",
                    ),
                ),
                migrations.AlterField(
                    model_name="submission",
                    name="challenge",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="submissions",
                        to="courses.challenge",
                    ),
                ),
                migrations.AlterField(
                    model_name="submission",
                    name="enrollment",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="submissions",
                        to="courses.enrollment",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
