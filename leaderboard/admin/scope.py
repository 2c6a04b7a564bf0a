"""The admin's scope: a TA's seat in one semester opens that semester's rows in the admin, and
only those.

Every model admin here is one of two kinds, and ``tests/platform/test_admin_scope.py`` checks
that none is neither:

- ``ScopedAdmin`` (and ``ScopedInline``): rows that belong to a semester. Lists, searches,
  filters' choices, foreign-key choices in forms, object pages, custom pages and actions cover
  the semesters the user administers (``courses.access.in_administered_semesters``); any other
  row is not found, as if it did not exist.
- ``SiteWideAdmin``: rows that belong to no one semester (accounts, groups, tokens, sign-in
  records). Only staff who administer every semester (superusers, ``courses.view_gradebook``)
  reach them: editing an account or a group is a site-wide power, and a TA who could would
  give themselves the rest.

Model permissions still apply on top: the scope narrows what they open, it never widens it.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import ForeignKey, Model, Q, QuerySet
from django.db.models.fields.related import RelatedField
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Invitation
from courses.access import User, in_administered_semesters, sees_every_gradebook
from courses.models import Challenge, Course, Enrollment, Extension, Semester
from submissions.models import GradingRun, RegradeBatch, Submission

#: how a row of each semester-scoped model reaches its semester (a course: see ``rows_in_scope``)
SEMESTER_PATHS: dict[type[Model], str] = {
    Semester: "pk",
    Challenge: "semester",
    Enrollment: "semester",
    Extension: "challenge__semester",
    Invitation: "semester",
    Submission: "challenge__semester",
    GradingRun: "submission__challenge__semester",
    RegradeBatch: "challenge__semester",
}


def is_scoped(model: type[Model]) -> bool:
    return model is Course or model in SEMESTER_PATHS


def rows_in_scope(model: type[Model], user: User) -> Q:
    """A filter for ``model``'s rows that belong to a semester ``user`` administers."""
    if model is not Course:
        return in_administered_semesters(user, SEMESTER_PATHS[model])
    semesters = in_administered_semesters(user, "pk")
    if not semesters:
        return semesters  # every semester: every course too, one without a semester yet included
    # A course is shared by its semesters: in scope with any of them. A subquery rather than a
    # join, so that a TA of two of its semesters does not list it twice.
    return Q(pk__in=Semester.objects.filter(semesters).values("course_id"))


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a scoped model offers the rows in scope only: a TA's semester filter
    names their semesters, not every course's."""

    def field_choices(
        self, field: RelatedField[Any, Any], request: HttpRequest, model_admin: admin.ModelAdmin
    ) -> list[tuple[str, Any]]:
        ordering = self.field_admin_ordering(field, request, model_admin)
        scope = rows_in_scope(field.related_model, request.user)
        choices = field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=scope)
        return cast(list[tuple[str, Any]], choices)


def scoped_list_filter(model: type[Model], spec: Any) -> Any:
    """An entry of ``list_filter``, with ``ScopedRelatedFilter`` on a relation to a scoped model."""
    if not isinstance(spec, str):
        return spec
    related = get_fields_from_path(model, spec)[-1].related_model
    if isinstance(related, type) and is_scoped(related):
        return (spec, ScopedRelatedFilter)
    return spec


def scoped_choices(
    model_admin: admin.options.BaseModelAdmin,
    db_field: ForeignKey[Any, Any],
    request: HttpRequest,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of a foreign key's form field, its choices limited to the scope:
    a TA cannot point an extension, a challenge or an enrolment at another semester."""
    related = db_field.remote_field.model
    if "queryset" in kwargs or not isinstance(related, type) or not is_scoped(related):
        return kwargs
    using = kwargs.get("using")
    # The related admin's ordering, as Django's own choice would have it.
    queryset = model_admin.get_field_queryset(using, db_field, request)
    if queryset is None:
        queryset = related._default_manager.using(using).all()
    return {**kwargs, "queryset": queryset.filter(rows_in_scope(related, request.user))}


class ScopedAdmin(admin.ModelAdmin):
    """Rows that belong to a semester: everything covers the semesters the user administers."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Lists, searches, object pages (``get_object``), autocomplete and actions start here.
        return super().get_queryset(request).filter(rows_in_scope(self.model, request.user))

    def get_list_filter(self, request: HttpRequest) -> Any:
        return [scoped_list_filter(self.model, spec) for spec in super().get_list_filter(request)]

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        kwargs = scoped_choices(self, db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        # The list hands actions a queryset built from ``get_queryset``; filtering once more
        # keeps every action in scope whatever builds that queryset.
        scoped = queryset.filter(rows_in_scope(self.model, request.user))
        return super().response_action(request, scoped, *args, **kwargs)

    def object_or_404(self, request: HttpRequest, object_id: int | str) -> Any:
        """The row of a custom page (reveal, re-grade, roster, publish, cancel): one out of
        scope is not found, like one that does not exist."""
        found = self.get_object(request, str(object_id))
        if found is None:
            raise Http404(f"no {self.opts.verbose_name} {object_id}")
        return found


class ScopedInline(admin.TabularInline):
    """The rows of a scoped model on another's page, with scoped foreign-key choices."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(rows_in_scope(self.model, request.user))

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        kwargs = scoped_choices(self, db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class SiteWideAdmin(admin.ModelAdmin):
    """Rows of no one semester: only for staff who administer every semester."""

    #: why the model has no semester scope (the scope test asks each site-wide admin for one)
    site_wide_because = ""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return sees_every_gradebook(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_every_gradebook(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return sees_every_gradebook(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_every_gradebook(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_every_gradebook(request.user) and super().has_delete_permission(request, obj)
