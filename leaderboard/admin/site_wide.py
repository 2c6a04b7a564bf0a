"""Django's account pages and django-axes' sign-in records in the admin: site-wide rows, for
staff who administer every semester only (``scope.SiteWideAdmin``).

Both apps register their own admin; it is replaced here by the same class with the site-wide
rule in front. django-axes registers its pages when Django's admin imports ``axes.admin``,
after this package (``INSTALLED_APPS`` order): importing it first lets them be replaced.
"""

import axes.admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User

from leaderboard.admin.scope import SiteWideAdmin


class UserAdmin(SiteWideAdmin, auth_admin.UserAdmin):
    site_wide_because = (
        "an account spans semesters, and changing one (password, email, staff status,"
        " permissions) would let a TA take over any account or give themselves every semester"
    )


class GroupAdmin(SiteWideAdmin, auth_admin.GroupAdmin):
    site_wide_because = "groups carry permissions, courses.view_gradebook among them"


class AccessAttemptAdmin(SiteWideAdmin, axes.admin.AccessAttemptAdmin):
    site_wide_because = "sign-in attempts of every account, with addresses"


class AccessLogAdmin(SiteWideAdmin, axes.admin.AccessLogAdmin):
    site_wide_because = "sign-ins of every account, with addresses"


class AccessFailureLogAdmin(SiteWideAdmin, axes.admin.AccessFailureLogAdmin):
    site_wide_because = "failed sign-ins of every account, with addresses"


for model, model_admin in [
    (User, UserAdmin),
    (Group, GroupAdmin),
    (AccessAttempt, AccessAttemptAdmin),
    (AccessLog, AccessLogAdmin),
    (AccessFailureLog, AccessFailureLogAdmin),
]:
    # axes leaves its pages out when AXES_ENABLE_ADMIN is off: so does this.
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
