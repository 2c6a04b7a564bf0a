from django.urls import path

from submissions import account, api, regrade_views, views

urlpatterns = [
    path("challenges/<slug:slug>/", views.challenge_detail, name="challenge_detail"),
    path("submissions/", views.submission_list, name="submission_list"),
    path("submissions/live/", views.submission_live, name="submission_live"),
    path("submissions/<uuid:pk>/", views.submission_detail, name="submission_detail"),
    path("staff/regrades/<int:pk>/", regrade_views.regrade_report, name="regrade_report"),
    path("accounts/profile/", account.profile, name="profile"),
    path("accounts/profile/token/", account.token_regenerate, name="token_regenerate"),
]

api_urlpatterns = [
    path("challenges/", api.challenge_list, name="api_challenge_list"),
    path(
        "challenges/<slug:slug>/submissions/",
        api.submission_create_view,
        name="api_submission_create",
    ),
    path("challenges/<slug:slug>/leaderboard/", api.leaderboard, name="api_leaderboard"),
    path("submissions/<uuid:pk>/", api.submission_detail, name="api_submission_detail"),
]
