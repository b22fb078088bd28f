# One image for every role: `orchestrator api | worker | simulator | db upgrade | seed`.
#
#   docker build -t order-orchestrator .
#   docker run --rm -e DATABASE_URL=... -e TEMPORAL_ADDRESS=... -p 8000:8000 order-orchestrator api
#
# Configuration comes only from the environment names in infra/settings.py (ORCH_*, DATABASE_URL,
# TEMPORAL_ADDRESS, ...); docker-compose.yml shows a whole stack. There is no HEALTHCHECK here because the
# roles differ (the worker serves no HTTP): each service declares its own in docker-compose.yml.

ARG PYTHON_IMAGE=python:3.11.15-slim-trixie

# --- build: a virtualenv with the project and its runtime dependencies ------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml itself, so this layer is reused while only code changes. The
# `local` extra (Temporal dev server and embedded PostgreSQL for `orchestrator dev`) is left out: a container
# talks to real servers. Only `orchestrator dev` imports those, lazily; the smoke test below proves it.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
    > requirements.txt \
 && pip install -r requirements.txt

# Then the project itself (not the dev extras); --no-deps because the dependencies are already in place.
COPY . .
RUN pip install --no-deps .

# --- runtime: the virtualenv on a clean base, run as an unprivileged user ---------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Image defaults, names from infra/settings.py: inside a container the API and the simulator must listen on
# every interface, and logs are JSON lines. Compose (or any platform) can still override both.
ENV ORCH_API_HOST=0.0.0.0 \
    ORCH_SIMULATOR_HOST=0.0.0.0 \
    LOG_FORMAT=json

RUN groupadd --system --gid 10001 orchestrator \
 && useradd --system --uid 10001 --gid orchestrator --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin orchestrator
COPY --from=build /opt/venv /opt/venv
WORKDIR /app

# Numeric, so a platform (e.g. Kubernetes runAsNonRoot) can verify it without looking the name up.
USER 10001:10001

# Smoke test: every role imports with only the runtime dependencies, and the Alembic revisions were packaged.
RUN orchestrator --help > /dev/null \
 && python -c "import api.app, worker, integrations.simulator.app; \
from infra.db.migrate import current_head; \
assert current_head(), 'no Alembic revision in the installed package'"

# API (ORCH_API_PORT) and simulator (ORCH_SIMULATOR_PORT).
EXPOSE 8000 8100
ENTRYPOINT ["orchestrator"]
CMD ["api"]
