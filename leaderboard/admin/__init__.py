"""The staff's pages in Django's admin: courses, semesters (close, reopen, import a roster),
challenges (re-grade, with live progress), enrolments, submissions and their runs, re-grades,
invitations (sent from the Semester list); Django's account pages and the sign-in records.
Each page covers the semesters its user administers (``scope``).

They live with the site's other pages, above both ``courses`` and ``submissions`` (the admin of
a challenge starts re-grades), and are registered when Django's admin imports this package.
"""

from leaderboard.admin import accounts, courses, regrades, site_wide, submissions

__all__ = ["accounts", "courses", "regrades", "site_wide", "submissions"]
