# syntax=docker/dockerfile:1
#
# The automation service: one image for every role. The command picks the role:
#   docker run IMAGE                      -> `automation serve` (every role in one process)
#   docker run IMAGE worker               -> one stage worker (needs DATABASE_URL, AMQP_URL)
# See docs/deployment.md and docker-compose.yml.

############################################################################################
# builder: the project's wheel and the wheels of all its dependencies, into /wheels
############################################################################################
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Only what the build needs: pyproject.toml names README.md as the readme.
COPY pyproject.toml README.md ./
COPY src ./src

RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

############################################################################################
# runtime: the wheels installed offline, run as an unprivileged user
############################################################################################
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    AUTOMATION_DATA_DIR=/var/lib/automation

RUN groupadd --system --gid 10001 automation \
    && useradd --system --uid 10001 --gid automation \
        --home-dir /home/automation --create-home --shell /usr/sbin/nologin automation \
    && mkdir -p /var/lib/automation \
    && chown automation:automation /var/lib/automation

# The wheels are bind-mounted from the builder, so they never become a layer of this image.
# Offline from /wheels, which holds exactly one version of each package (hence no pins).
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels automation-runs

WORKDIR /var/lib/automation
USER 10001:10001

EXPOSE 8000

# Liveness of the HTTP roles (serve, api) on port 8000. Roles without HTTP (worker, relay,
# orchestrator, projector, scheduler) must disable it: docker-compose.yml does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["automation"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
