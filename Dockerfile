# syntax=docker/dockerfile:1
# certcheck: configured only through CERTCHECK_* environment variables (see README, Settings).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first, from pyproject.toml alone: a source change keeps this layer cached.
COPY pyproject.toml ./
RUN python -m venv /opt/certcheck \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && /opt/certcheck/bin/pip install --no-compile -r /tmp/requirements.txt
COPY README.md ./
COPY migrations ./migrations
COPY src ./src
COPY hatch_build.py ./
# A C compiler for this stage only: mypyc compiles the request path (hatch_build.py). Not
# pinned: Debian's bookworm updates are security fixes, and nothing of it reaches the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && /opt/certcheck/bin/pip install --no-compile --no-deps . \
    && /opt/certcheck/bin/python -c "from certcheck.serving import request_path_build as b; \
        assert b() == 'compiled by mypyc', b()"

FROM python:3.11-slim-bookworm
# The embedded database lives in the volume; CERTCHECK_PORT is read by `serve` and the
# health check alike.
ENV PATH=/opt/certcheck/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CERTCHECK_DATABASE_URL=sqlite+aiosqlite:////var/lib/certcheck/certcheck.db \
    CERTCHECK_HOST=0.0.0.0 \
    CERTCHECK_PORT=8000
RUN groupadd --system --gid 10001 certcheck \
    && useradd --system --uid 10001 --gid certcheck --home-dir /var/lib/certcheck certcheck \
    && mkdir -p /var/lib/certcheck \
    && chown certcheck:certcheck /var/lib/certcheck
VOLUME ["/var/lib/certcheck"]
COPY --from=build /opt/certcheck /opt/certcheck
USER 10001:10001
WORKDIR /var/lib/certcheck
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CERTCHECK_PORT', '8000'), timeout=2)"]
# `serve` applies pending migrations, then runs uvicorn; SIGTERM drains gracefully.
ENTRYPOINT ["certcheck"]
CMD ["serve"]
