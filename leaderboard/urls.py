from django.urls import path

from leaderboard import views

urlpatterns = [
    path("", views.home, name="home"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    path("courses/<slug:slug>/archive/", views.course_archive, name="course_archive"),
    path(
        "challenges/<slug:slug>/leaderboard/",
        views.challenge_leaderboard,
        name="challenge_leaderboard",
    ),
    path("challenges/<slug:slug>/staff/", views.challenge_staff, name="challenge_staff"),
    path(
        "challenges/<slug:slug>/staff/passes.csv",
        views.challenge_passes_csv,
        name="challenge_passes_csv",
    ),
]
