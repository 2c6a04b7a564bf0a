from django.urls import path

from leaderboard import views

urlpatterns = [
    path("", views.home, name="home"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    path(
        "challenges/<slug:slug>/leaderboard/",
        views.challenge_leaderboard,
        name="challenge_leaderboard",
    ),
]
