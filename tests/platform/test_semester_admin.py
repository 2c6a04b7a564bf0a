"""The Semester admin: close / reopen actions and the roster upload view."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from courses.models import Enrollment, Semester
from tests.platform.conftest import make_user

ROSTER = b"username,email,first_name,last_name\nada,ada@uni.example,Ada,Lovelace\n"


def roster_upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("roster.csv", ROSTER, content_type="text/csv")


def test_it_closes_and_reopens_semesters(client, staff, semester, earlier_semester):
    client.force_login(staff)

    response = client.post(
        "/admin/courses/semester/",
        {"action": "close", "_selected_action": [semester.pk, earlier_semester.pk]},
        follow=True,
    )

    assert "1 semester(s) closed." in response.content.decode()
    semester.refresh_from_db()
    assert semester.closed and semester.closed_at is not None

    client.post("/admin/courses/semester/", {"action": "reopen", "_selected_action": [semester.pk]})
    semester.refresh_from_db()
    assert not semester.closed and semester.closed_at is None


def test_it_refuses_uploads_once_closed(client, student, challenge, tiny_models):
    Semester.objects.filter(pk=challenge.semester_id).update(closed=True)
    client.force_login(student)
    from tests.platform.conftest import model_upload

    response = client.post(
        f"/challenges/{challenge.slug}/", {"file": model_upload(tiny_models.zeros)}
    )

    assert challenge.submissions.count() == 0
    assert "closed" in response.content.decode()


def test_it_links_the_roster_import_from_the_change_page(client, staff, semester):
    client.force_login(staff)

    page = client.get(f"/admin/courses/semester/{semester.pk}/change/").content.decode()

    assert f"/admin/courses/semester/{semester.pk}/import-roster/" in page


def test_it_imports_a_roster_uploaded_by_staff_twice_without_duplicates(client, staff, semester):
    client.force_login(staff)
    url = f"/admin/courses/semester/{semester.pk}/import-roster/"
    assert client.get(url).status_code == 200

    first = client.post(url, {"roster": roster_upload()}, follow=True).content.decode()
    second = client.post(url, {"roster": roster_upload()}, follow=True).content.decode()

    assert "1 account(s) created, 0 linked, 1 enrolment(s) created" in first
    assert "0 account(s) created, 1 linked, 0 enrolment(s) created, 1 already enrolled" in second
    assert Enrollment.objects.filter(semester=semester).count() == 1


def test_it_refuses_the_roster_upload_to_non_staff(client, student, semester):
    client.force_login(student)

    response = client.post(
        f"/admin/courses/semester/{semester.pk}/import-roster/", {"roster": roster_upload()}
    )

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not Enrollment.objects.filter(user__username="ada").exists()


def test_it_refuses_the_roster_upload_to_staff_without_change_permission(client, semester):
    viewer = make_user("viewer", is_staff=True)
    # A TA of the semester: the admin shows staff without the grade-book permission no other.
    Enrollment.objects.create(user=viewer, semester=semester, role=Enrollment.Role.TA)
    viewer.user_permissions.add(Permission.objects.get(codename="view_semester"))
    client.force_login(viewer)

    response = client.post(
        f"/admin/courses/semester/{semester.pk}/import-roster/", {"roster": roster_upload()}
    )

    assert response.status_code == 403


def test_it_sends_invitations_from_the_semester_list_and_counts_them(client, staff, semester):
    from django.core import mail

    from accounts.models import Invitation
    from courses.roster import roster_import

    roster_import(semester, ROSTER.decode())
    client.force_login(staff)

    first = client.post(
        "/admin/courses/semester/",
        {"action": "invite", "_selected_action": [semester.pk]},
        follow=True,
    )
    second = client.post(
        "/admin/courses/semester/",
        {"action": "invite", "_selected_action": [semester.pk]},
        follow=True,
    )

    assert "1 invitation(s) sent, 0 already invited" in first.content.decode()
    assert "0 invitation(s) sent, 1 already invited" in second.content.decode()
    assert [m.to for m in mail.outbox] == [["ada@uni.example"]]
    assert Invitation.objects.get().sent_by == staff


def test_it_offers_the_invite_action_only_to_staff_who_may_change_semesters(client, semester):
    viewer = make_user("viewer", is_staff=True)
    # A TA of the semester: the admin shows staff without the grade-book permission no other.
    Enrollment.objects.create(user=viewer, semester=semester, role=Enrollment.Role.TA)
    viewer.user_permissions.add(Permission.objects.get(codename="view_semester"))
    client.force_login(viewer)

    page = client.get("/admin/courses/semester/").content.decode()

    assert "Send invitations to students who never signed in" not in page
