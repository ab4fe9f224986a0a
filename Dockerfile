# One image for the eight cgrpy services; the compose file picks the service per container with
# `python -m services.<name>`. Build from the repository root: docker build -t cgrpy .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/cgrpy/src
COPY pyproject.toml README.md ./
COPY cgrpy ./cgrpy
COPY cgrates ./cgrates
COPY services ./services
COPY bench ./bench
# Every runtime dependency ships as a manylinux wheel (grpcio, psycopg[binary]), so the slim base
# needs no compiler; the source tree is removed once installed.
RUN pip install . && cd / && rm -rf /opt/cgrpy/src

# SIPp (Debian's sip-tester) for `cgr smoke`, run inside the stack: calls through OpenSIPS.
RUN apt-get -y update -qq && apt-get -y install --no-install-recommends sip-tester \
    && rm -rf /var/lib/apt/lists/*

# Default tariff plans, for `cgr load /usr/share/cgrpy/tariffplans/tutorial` without a mount.
COPY tariffplans /usr/share/cgrpy/tariffplans

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/cgrpy --create-home cgrpy \
    && mkdir -p /var/lib/cgrpy/export && chown -R cgrpy:cgrpy /var/lib/cgrpy
WORKDIR /var/lib/cgrpy
USER 10001:10001

# Inside a container the servers must listen on every interface of the container network.
ENV CGRPY_LISTEN_HOST=0.0.0.0 \
    CGRPY_CDRE_EXPORT_PATH=/var/lib/cgrpy/export \
    CGRPY_SERVICE=sm

# CGRPY_SERVICE names the service this container runs (compose sets it next to the command);
# the check is a real gRPC health call, SERVING only once the service has loaded its data.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD cgr health --service "$CGRPY_SERVICE" --timeout 3 || exit 1

CMD ["sh", "-c", "exec python -m services.$CGRPY_SERVICE"]
