# sftriggerd container image. Build (BuildKit, the default since Docker 23):
#   docker build -t sftriggerd:0.1.0 .
# Run (see docs/operations.md, "The container image"):
#   docker run -d --name sftriggerd --stop-timeout 30 -p 8080:8080 \
#     -v "$PWD/config.yaml:/etc/sftriggerd/config.yaml:ro" --env-file sftriggerd.env \
#     -v sftriggerd-state:/var/lib/sftriggerd sftriggerd:0.1.0
# The config must listen on all interfaces inside the container: `server.listen: 0.0.0.0:8080`,
# or `listen: ${SFTRIGGERD_LISTEN:-127.0.0.1:8080}`, which this image sets to 0.0.0.0:8080.
# With 127.0.0.1 the published port answers nothing (the health check still passes).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the sftriggerd wheel and a wheel of every dependency -------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY daemon ./daemon
# With the otel extra: tracing is in the image, off until the OTEL_* variables ask for it.
RUN pip wheel --wheel-dir /wheels '.[otel]'

# --- runtime: a venv in /opt/sftriggerd (the path the systemd unit uses too) ----------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sftriggerd" \
      org.opencontainers.image.description="Watches a Salesforce org and calls signed webhooks" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

ENV PATH=/opt/sftriggerd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SFTRIGGERD_LISTEN=0.0.0.0:8080

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it and volumes can be
# chowned to it (fsGroup: 10001).
RUN groupadd --system --gid 10001 sftriggerd \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sftriggerd \
       --no-create-home --shell /usr/sbin/nologin sftriggerd \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/sftriggerd \
    && install -d -m 0755 /etc/sftriggerd

# Installs from the builder's wheels only (no index), without copying them into a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/sftriggerd \
    && wheel="$(echo /wheels/sftriggerd-*.whl)" \
    && /opt/sftriggerd/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
       "${wheel}[otel]" \
    && sftriggerd --help >/dev/null

# The SQLite store (store.url: sqlite:////var/lib/sftriggerd/state.db) with its -wal and -shm
# files. Mount a named volume or a persistent volume here.
VOLUME ["/var/lib/sftriggerd"]
WORKDIR /var/lib/sftriggerd
USER 10001:10001

EXPOSE 8080
# /healthz answers 200 while the event loop turns. Another port or path: set
# SFTRIGGERD_HEALTHCHECK_URL. The start period covers store migrations at start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('SFTRIGGERD_HEALTHCHECK_URL', 'http://127.0.0.1:8080/healthz'), timeout=4)"]

# SIGTERM drains in-flight deliveries for up to server.shutdown_grace (20s by default): give
# `docker stop` more than that (--stop-timeout 30, compose stop_grace_period: 30s); Docker's
# default of 10s kills the drain half-way.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sftriggerd"]
CMD ["run", "--config", "/etc/sftriggerd/config.yaml"]
