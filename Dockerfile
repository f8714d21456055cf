# The storefront bot in a container: `docker compose up -d` (docker-compose.yml), or
#   docker build -t storefront . && docker run --env-file .env -v storefront-data:/data storefront
# Settings come from the environment (--env-file / env_file: .env); none is baked in.

# ---- build: a virtual environment with the project and its dependencies ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The source stays in /app and is installed in place (editable), so the bot finds its
# locales/ beside its packages (handlers/middlewares/i18n.py: the package's parent folder + /locales),
# exactly as in a clone. Every top-level package of pyproject.toml is copied here.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales
# The .mo files are compiled now: at run time the source folder is read-only.
RUN pip install --no-cache-dir -e '.[redis]' \
    && python -c "from handlers.middlewares.i18n import compile_locales; print('translations:', *compile_locales())" \
    && python -m compileall -q bot handlers storage

# ---- run: the venv and the source, a non-root user, the data on a volume ----
FROM python:3.11-slim

# HEALTH_PORT: polling mode serves GET /healthz and /metrics there (webhook mode serves them
# on its listen port), so the HEALTHCHECK below works in both modes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_PATH=/data/storefront.sqlite3 \
    BACKUP_DIR=/data/backups \
    HEALTH_PORT=8080

RUN groupadd --system --gid 10001 storefront \
    && useradd --system --uid 10001 --gid storefront --create-home --home-dir /home/storefront \
        --shell /usr/sbin/nologin storefront \
    && mkdir -p /data/backups \
    && chown -R storefront:storefront /data

COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
# A relative data/... (DATABASE_PATH=data/storefront.sqlite3 from a copied .env.example,
# the pre-migration backups) lands on the volume too.
RUN ln -s /data /app/data

# The storefront user and group (numeric, so a runtime can tell it is not root).
USER 10001:10001
VOLUME /data
# Webhook mode listens on WEBHOOK_PORT, else PORT, else 8080; polling mode's health port.
EXPOSE 8080

# The same port rule as the bot: webhook mode (WEBHOOK_URL set) on its listen port, polling
# mode on HEALTH_PORT. A 503 (database unusable) or no answer is unhealthy. No curl here;
# no proxy either (HTTP_PROXY, set for reaching Telegram, must not take loopback calls).
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; e = lambda k: os.environ.get(k, '').strip(); port = (e('WEBHOOK_PORT') or e('PORT') or '8080') if e('WEBHOOK_URL') else (e('HEALTH_PORT') or '8080'); r.build_opener(r.ProxyHandler({})).open(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["python", "-m", "bot"]
