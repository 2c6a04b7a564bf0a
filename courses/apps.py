from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Courses, semesters, challenges and enrolments: the bottom of the web side (DESIGN.md's
    layering: submissions sit above, the site's pages above both)."""

    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"
