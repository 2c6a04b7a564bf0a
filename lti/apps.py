from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LtiConfig(AppConfig):
    name = "lti"
    verbose_name = _("LTI (learning platforms)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Grade passback follows the standings and the reveal (signals of ``submissions``);
        # the staff health page lists failed passbacks.
        from lti import grades

        grades.connect()
