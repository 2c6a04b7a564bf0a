from django.contrib import admin

from leaderboard.models import Challenge, Course, Enrollment, Semester


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "timezone"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Semester)
class SemesterAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "slug", "starts_on", "is_current", "closed"]
    list_filter = ["course", "is_current", "closed"]
    list_select_related = ["course"]
    search_fields = ["title", "slug", "course__title"]


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "task", "semester", "deadline", "threshold", "daily_quota"]
    list_filter = ["semester__course", "semester", "task"]
    list_select_related = ["semester__course"]
    search_fields = ["title", "slug"]
    fieldsets = [
        (None, {"fields": ["semester", "task", "slug", "title", "description"]}),
        ("Grading", {"fields": ["deadline", "threshold", "use_pooled_accuracy", "data_dir"]}),
        (
            "Limits",
            {
                "fields": [
                    "allowed_formats",
                    "max_file_mb",
                    "max_params",
                    "memory_mb",
                    "time_limit_seconds",
                    "daily_quota",
                ]
            },
        ),
    ]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["handle", "user", "semester", "role", "created_at"]
    list_filter = ["semester__course", "semester", "role"]
    list_select_related = ["user", "semester__course"]
    search_fields = ["handle", "user__username", "user__email"]
    autocomplete_fields = ["user"]
    readonly_fields = ["handle", "created_at"]
