from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from leaderboard.metrics import metrics_view

urlpatterns = [
    # Courses, semesters, challenges and enrolments were the ``leaderboard`` app's models; their
    # admin pages moved with them to ``courses``: old bookmarks still arrive.
    re_path(
        r"^admin/leaderboard/(?P<rest>(?:course|semester|challenge|enrollment)/.*)$",
        RedirectView.as_view(url="/admin/courses/%(rest)s", query_string=True, permanent=True),
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("leaderboard.urls")),
    path("lti/", include("lti.urls")),
]

handler400 = "leaderboard.views.errors.bad_request"
handler403 = "leaderboard.views.errors.permission_denied"
handler404 = "leaderboard.views.errors.page_not_found"
handler500 = "leaderboard.views.errors.server_error"
