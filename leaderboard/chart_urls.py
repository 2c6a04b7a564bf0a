"""Pictures: the board's histogram and a segmentation result's charts (see chart_views)."""

from django.urls import path

from leaderboard import chart_views

urlpatterns = [
    path(
        "challenges/<slug:slug>/leaderboard/histogram.svg",
        chart_views.challenge_histogram,
        name="challenge_histogram",
    ),
    path(
        "submissions/<uuid:pk>/per-class.svg",
        chart_views.submission_per_class,
        name="submission_per_class",
    ),
    path(
        "submissions/<uuid:pk>/samples.png",
        chart_views.submission_samples,
        name="submission_samples",
    ),
]
