"""The Invitation list in the admin: read only, a constant number of queries."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.invitations import invitations_send
from courses.roster import roster_import


def roster(count: int) -> str:
    return "username,email\n" + "".join(f"s{i},s{i}@uni.example\n" for i in range(count))


def test_it_lists_invitations_in_a_constant_number_of_queries(client, staff, semester):
    client.force_login(staff)
    roster_import(semester, roster(1))
    invitations_send(semester)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/admin/accounts/invitation/").status_code == 200

    roster_import(semester, roster(6))
    invitations_send(semester)
    with CaptureQueriesContext(connection) as six:
        page = client.get("/admin/accounts/invitation/").content.decode()

    assert "s5@uni.example" in page
    # session, user, the filters' courses and semesters, two counts (filtered, total), the
    # page of invitations with user, semester, course and sender joined, the date hierarchy's
    # range and its days: the same for one invitation or six.
    assert len(one) == len(six) == 9


def test_it_adds_or_changes_no_invitation_by_hand(client, staff, semester):
    client.force_login(staff)
    roster_import(semester, roster(1))
    invitations_send(semester)

    assert client.get("/admin/accounts/invitation/add/").status_code == 403
    assert User.objects.filter(invitations__isnull=False).count() == 1
