"""Courses, semesters, challenges, enrolments and the public leaderboard."""
