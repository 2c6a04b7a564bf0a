"""Every page of the site, by audience: the module a page's view lives in is named after it.

The admin (``/admin/``, ``leaderboard.admin``) and signing in (``/accounts/login/``) are wired in
``config.urls``.
"""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from accounts import language
from leaderboard import api
from leaderboard.views import public, staff, student

# Everyone (leaderboard.views.public): boards are public, handles are pseudonyms.
public_urls = [
    path("", public.home, name="home"),
    path("courses/<slug:slug>/archive/", public.course_archive, name="course_archive"),
    path(
        "challenges/<slug:slug>/leaderboard/",
        public.challenge_leaderboard,
        name="challenge_leaderboard",
    ),
    path(
        "challenges/<slug:slug>/leaderboard/histogram.svg",
        public.challenge_histogram,
        name="challenge_histogram",
    ),
]

# Signed-in members of a course (leaderboard.views.student).
student_urls = [
    path("courses/<slug:slug>/", student.course_detail, name="course_detail"),
    path("challenges/<slug:slug>/", student.challenge_detail, name="challenge_detail"),
    path("submissions/", student.submission_list, name="submission_list"),
    path("submissions/live/", student.submission_live, name="submission_live"),
    path("submissions/<uuid:pk>/", student.submission_detail, name="submission_detail"),
    path("submissions/<uuid:pk>/select/", student.submission_select, name="submission_select"),
    path(
        "submissions/<uuid:pk>/<slug:name>.svg",
        student.submission_chart,
        name="submission_chart",
    ),
    path(
        "submissions/<uuid:pk>/<slug:name>.png",
        student.submission_picture,
        name="submission_picture",
    ),
]

# Course staff: site staff, or teaching assistants of the semester (leaderboard.views.staff).
staff_urls = [
    path("challenges/<slug:slug>/staff/", staff.challenge_staff, name="challenge_staff"),
    path(
        "challenges/<slug:slug>/staff/passes.csv",
        staff.challenge_passes_csv,
        name="challenge_passes_csv",
    ),
    path("challenges/<slug:slug>/staff/copies/", staff.challenge_copies, name="challenge_copies"),
    path(
        "challenges/<slug:slug>/staff/copies.csv",
        staff.challenge_copies_csv,
        name="challenge_copies_csv",
    ),
    path("staff/regrades/<int:pk>/", staff.regrade_report, name="regrade_report"),
    path("staff/health/", staff.platform_health, name="platform_health"),
    path("staff/health/compute.svg", staff.platform_compute_chart, name="platform_compute_chart"),
]

# Scripts and notebooks, with a token (leaderboard.api): JSON in, JSON out.
api_urls = [
    path("api/challenges/", api.challenge_list, name="api_challenge_list"),
    path(
        "api/challenges/<slug:slug>/submissions/",
        api.submission_create_view,
        name="api_submission_create",
    ),
    path("api/challenges/<slug:slug>/leaderboard/", api.leaderboard, name="api_leaderboard"),
    path("api/submissions/<uuid:pk>/", api.submission_detail, name="api_submission_detail"),
    path(
        "api/submissions/<uuid:pk>/select/",
        api.submission_select_view,
        name="api_submission_select",
    ),
]

# Languages: the header's switch posts here (Django's ``set_language``, the choice saved for a
# signed-in user), and the live pages' scripts read their strings from the catalogue (a script
# from this site, as the CSP asks, not inline).
language_urls = [
    path("i18n/setlang/", language.set_language, name="set_language"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript_catalog"),
]

urlpatterns = public_urls + student_urls + staff_urls + api_urls + language_urls
