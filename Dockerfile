# syntax=docker/dockerfile:1
# certcheck: configured only through CERTCHECK_* environment variables (see README, Settings).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN python -m venv /opt/certcheck \
    && /opt/certcheck/bin/pip install --no-compile .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/certcheck/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CERTCHECK_DATABASE_URL=sqlite+aiosqlite:////var/lib/certcheck/certcheck.db
RUN groupadd --system --gid 10001 certcheck \
    && useradd --system --uid 10001 --gid certcheck --home-dir /var/lib/certcheck certcheck \
    && mkdir -p /var/lib/certcheck \
    && chown certcheck:certcheck /var/lib/certcheck
COPY --from=build /opt/certcheck /opt/certcheck
USER 10001:10001
WORKDIR /var/lib/certcheck
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# `serve` applies pending migrations, then runs uvicorn; SIGTERM drains gracefully.
ENTRYPOINT ["certcheck"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
