"""The LTI tool's URLs, under ``/lti/``."""

from django.urls import path

from lti import views

urlpatterns = [
    path("login/<uuid:registration_uuid>/", views.login_init, name="lti_login"),
    path("login/", views.login_init, name="lti_login_any"),
    path("launch/", views.launch, name="lti_launch"),
    path("jwks/", views.jwks, name="lti_jwks"),
    path("pick/", views.pick, name="lti_pick"),
]
