"""gunicorn's settings for the web container (docker-compose.yml) and tests/test_proxy.py.

Three sync workers: each holds one request from its first byte to its last, which is why
gunicorn only ever talks to the reverse proxy (deploy/Caddyfile). The proxy has read headers and
body in full before a worker is involved, so a slow client costs a proxy connection, not one of
these three.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
worker_class = "sync"
timeout = 60
# Logs to the container's output.
accesslog = "-"
errorlog = "-"
