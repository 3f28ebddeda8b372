# The emulator and the sample receiver for deploy/compose/compose.yaml: the daemon's wheel plus
# the emulator's, which the production image (the Dockerfile at the top) never carries. A
# demo image, not for production: the emulator's logins and keys are public.
# Build from the repository root (compose.yaml does):
#   docker build -f deploy/compose/emulator.Dockerfile -t sftriggerd-emulator:0.1.0 .
# emulator.Dockerfile.dockerignore, next to this file, replaces the top .dockerignore for
# this build only (BuildKit), so emulator/ reaches this build and no other.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY daemon ./daemon
COPY emulator ./emulator
# Both projects in one call: the emulator's `sftriggerd==0.1.0` is met by the local project.
RUN pip wheel --wheel-dir /wheels . ./emulator

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="sftriggerd-emulator" \
      org.opencontainers.image.description="A local Salesforce org and a sample webhook receiver for sftriggerd's compose demo" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/sftriggerd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 sftriggerd \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sftriggerd-emulator \
       --no-create-home --shell /usr/sbin/nologin sftriggerd \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/sftriggerd-emulator
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/sftriggerd \
    && /opt/sftriggerd/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
       /wheels/sftriggerd_emulator-*.whl \
    && sftriggerd emulator --help >/dev/null
# The org's data (--state): a named volume mounted here starts owned by the user below.
VOLUME ["/var/lib/sftriggerd-emulator"]
WORKDIR /var/lib/sftriggerd-emulator
USER 10001:10001
EXPOSE 8085 7443 9000
ENTRYPOINT ["sftriggerd"]
CMD ["emulator", "--host", "0.0.0.0", "--port", "8085", "--pubsub-port", "7443", "--state", "/var/lib/sftriggerd-emulator"]
