"""Submissions and their grading runs: upload, queue, results, the JSON API."""
