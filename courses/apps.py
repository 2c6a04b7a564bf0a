from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Courses, semesters, challenges and enrolments: the bottom of the web side; submissions
    sit above it and the site's pages above both (README, "Architecture")."""

    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"
