# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    WEB_CONCURRENCY=2

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them. Every pinned package
# ships x86-64 manylinux wheels, so the slim image needs no compiler.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# The translations' .mo files are build output (docs/adding-things.md): compiled here, with
# Babel, as the slim image has no GNU msgfmt.
RUN python bin/translations.py compile

# Static files get content-hashed names (WhiteNoise's manifest storage), so browsers may
# cache them forever and a deploy never serves a stale CSS with a new page.
# Settings refuse to load without a secret key, a database URL, a Redis URL, a mail URL
# and the number of trusted proxies;
# collectstatic needs none for real (it never connects), so give it throwaway values for
# the build only.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-real-secret-key-0123456789abcdef \
    DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://build:6379/0 \
    DJANGO_TRUSTED_PROXY_COUNT=0 \
    EMAIL_URL=dummymail:// \
    python manage.py collectstatic --noinput

# The code and static files stay root's: the process can read them, not change them.
# USER is numeric so that a runtime can check it is not root without reading /etc/passwd
# (Kubernetes' runAsNonRoot).
RUN groupadd --gid 10001 app \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin app
# Patient export files (EXPORTS_DIR), one of the two directories the process writes; compose
# mounts a volume shared by web and worker here, which takes this owner.
RUN mkdir -p /exports && chown 10001:10001 /exports && chmod 700 /exports
ENV EXPORTS_DIR=/exports
# Exercise media on the file system (MEDIA_ROOT), unless MEDIA_S3_BUCKET names a store.
RUN mkdir -p /media && chown 10001:10001 /media && chmod 750 /media
ENV MEDIA_ROOT=/media
USER 10001:10001

EXPOSE 8000
# gunicorn reads WEB_CONCURRENCY for its number of worker processes (2-4 per core).
CMD ["sh", "-c", "exec gunicorn config.wsgi --bind 0.0.0.0:${PORT} --access-logfile -"]
