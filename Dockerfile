# One image for web, worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

# bubblewrap runs untrusted models; libseccomp2 backs the seccomp filter; xmlsec1 signs and
# checks SAML messages; gettext compiles the translations.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libseccomp2 util-linux xmlsec1 gettext \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The translations' binary form, from the committed .po files (no secret needed: DEBUG is on
# while building).
RUN python manage.py compilemessages --ignore=var

ENV PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings
EXPOSE 8000
