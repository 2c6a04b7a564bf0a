"""Everything under ``/accounts/``: sign-in and out, the profile and its API token,
invitations, password reset and change, and single sign-on (OpenID Connect under ``oidc/``,
SAML 2.0 under ``saml/``)."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import TemplateView

from accounts import oidc, profile, saml, views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("profile/", profile.profile, name="profile"),
    path("profile/token/", profile.token_regenerate, name="token_regenerate"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "invite/<uidb64>/<token>/", views.InvitationAcceptView.as_view(), name="invitation_accept"
    ),
    path(
        "invite/done/",
        TemplateView.as_view(template_name="accounts/invitation_done.html"),
        name="invitation_done",
    ),
    path("password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path(
        "password_change/",
        views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path("oidc/login/", oidc.OIDCLoginView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.OIDCCallbackView.as_view(), name="oidc_authentication_callback"),
    path("oidc/link/", oidc.OIDCLinkView.as_view(), name="oidc_link"),
    path("saml/metadata/", saml.saml_view("SAMLMetadataView"), name="saml2_metadata"),
    path("saml/login/", saml.saml_view("SAMLLoginView"), name="saml2_login"),
    path("saml/acs/", saml.saml_view("SAMLACSView"), name="saml2_acs"),
    path("saml/link/", saml.saml_view("SAMLLinkView"), name="saml_link"),
]
