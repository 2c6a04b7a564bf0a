"""Course, Semester, Challenge and Enrollment move here from the ``leaderboard`` app, which now
holds only pages. The tables already exist (``leaderboard`` created them), so this only teaches
the migration state where the models live; the content types (and with them the permissions
given to groups and the admin log) are renamed, not recreated. ``0002`` renames the tables."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import courses.models

MODELS = ("course", "semester", "challenge", "enrollment")


def _move_content_types(apps, schema_editor, source: str, target: str) -> None:
    """Rename the models' content types, so that permissions given to groups and users (and the
    admin log) follow them. If the new ones exist already (a migrate that created them before
    this ran), the old ones' permissions are handed over to them and the old ones deleted."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    for model in MODELS:
        old = ContentType.objects.using(db).filter(app_label=source, model=model).first()
        if old is None:  # a fresh database: content types are created after migrating
            continue
        new = ContentType.objects.using(db).filter(app_label=target, model=model).first()
        if new is None:
            ContentType.objects.using(db).filter(pk=old.pk).update(app_label=target)
            continue
        for permission in Permission.objects.using(db).filter(content_type=old):
            twin = (
                Permission.objects.using(db)
                .filter(content_type=new, codename=permission.codename)
                .first()
            )
            if twin is None:
                Permission.objects.using(db).filter(pk=permission.pk).update(content_type=new)
                continue
            for group in permission.group_set.all():
                group.permissions.add(twin)
            for user in permission.user_set.all():
                user.user_permissions.add(twin)
            permission.delete()
        ContentType.objects.using(db).filter(pk=old.pk).delete()


def content_types_to_courses(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, "leaderboard", "courses")


def content_types_to_leaderboard(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, "courses", "leaderboard")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("leaderboard", "0002_semester_closed_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Course",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("slug", models.SlugField(unique=True)),
                        ("title", models.CharField(max_length=200)),
                        (
                            "timezone",
                            models.CharField(
                                default="Europe/Berlin",
                                max_length=64,
                                validators=[courses.models.validate_timezone],
                            ),
                        ),
                    ],
                    options={
                        "db_table": "leaderboard_course",
                        "ordering": ["title"],
                    },
                ),
                migrations.CreateModel(
                    name="Semester",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "slug",
                            models.SlugField(help_text="e.g. ws2025; unique within the course"),
                        ),
                        (
                            "title",
                            models.CharField(help_text="e.g. Winter 2025/26", max_length=100),
                        ),
                        ("starts_on", models.DateField()),
                        ("closed", models.BooleanField(default=False)),
                        ("closed_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("is_current", models.BooleanField(default=False)),
                        (
                            "course",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="semesters",
                                to="courses.course",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "leaderboard_semester",
                        "ordering": ["course", "-starts_on"],
                    },
                ),
                migrations.CreateModel(
                    name="Enrollment",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "role",
                            models.CharField(
                                choices=[("student", "Student"), ("ta", "Teaching assistant")],
                                default="student",
                                max_length=16,
                            ),
                        ),
                        ("handle", models.CharField(editable=False, max_length=16)),
                        (
                            "created_at",
                            models.DateTimeField(default=django.utils.timezone.now, editable=False),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="enrollments",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "semester",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="enrollments",
                                to="courses.semester",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "leaderboard_enrollment",
                        "ordering": ["semester", "handle"],
                    },
                ),
                migrations.CreateModel(
                    name="Challenge",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "task",
                            models.CharField(choices=courses.models.task_choices, max_length=32),
                        ),
                        ("slug", models.SlugField(unique=True)),
                        ("title", models.CharField(max_length=200)),
                        ("description", models.TextField(blank=True)),
                        ("deadline", models.DateTimeField()),
                        (
                            "threshold",
                            models.FloatField(help_text="pass when the score is at least this"),
                        ),
                        (
                            "allowed_formats",
                            models.JSONField(
                                default=courses.models.default_formats,
                                validators=[courses.models.validate_formats],
                            ),
                        ),
                        ("max_params", models.PositiveIntegerField(default=5000000)),
                        ("max_file_mb", models.PositiveIntegerField(default=50)),
                        ("daily_quota", models.PositiveSmallIntegerField(default=5)),
                        ("memory_mb", models.PositiveIntegerField(default=4096)),
                        (
                            "time_limit_seconds",
                            models.PositiveIntegerField(
                                default=300,
                                help_text="wall clock for loading the model and predicting every image",
                            ),
                        ),
                        (
                            "data_dir",
                            models.CharField(
                                help_text="hidden test set, relative to GRADER_DATA_ROOT on the workers",
                                max_length=255,
                                validators=[courses.models.validate_data_dir],
                            ),
                        ),
                        ("use_pooled_accuracy", models.BooleanField(default=False)),
                        (
                            "semester",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="challenges",
                                to="courses.semester",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "leaderboard_challenge",
                        "ordering": ["deadline", "title"],
                    },
                ),
                migrations.AddConstraint(
                    model_name="semester",
                    constraint=models.UniqueConstraint(
                        fields=("course", "slug"), name="semester_slug_per_course"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="semester",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("is_current", True)),
                        fields=("course",),
                        name="one_current_semester",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="enrollment",
                    constraint=models.UniqueConstraint(
                        fields=("user", "semester"), name="one_enrollment_per_semester"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="enrollment",
                    constraint=models.UniqueConstraint(
                        fields=("semester", "handle"), name="handle_unique_per_semester"
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_courses, content_types_to_leaderboard),
    ]
