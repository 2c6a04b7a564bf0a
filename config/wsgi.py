"""WSGI entry point: ``gunicorn config.wsgi``."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# What is loaded by now (Django, the apps and their modules) lives as long as the process. Moved
# out of the collector's generations, it is no longer rescanned by every full collection, such
# as those that building a 2,000-row board sets off (benchmarks/bench_leaderboard.py measures
# the ranking's p95 with and without this).
gc.freeze()
