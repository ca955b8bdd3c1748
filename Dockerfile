# syntax=docker/dockerfile:1
# tokengate gateway image (the demo backend ships inside it too: python -m demo_backend).
#
#   docker build -t tokengate:0.1.0 .
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#     -v tokengate-data:/var/lib/tokengate -v "$PWD/config:/etc/tokengate:ro" \
#     -p 8080:8080 tokengate:0.1.0
#
# Both stages must use the same base image: the venv's interpreter links point
# into it. To pin by digest, pass --build-arg PYTHON_IMAGE=python:3.12-slim@sha256:...
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
WORKDIR /src
RUN python -m venv /opt/tokengate
# The build context is the source tree minus what .dockerignore drops.
COPY . .
# The core by default, every version from the committed lock. EXTRAS=egress adds
# the egress relay (mitmproxy; run the image with "egress serve --config ..."):
#   docker build --build-arg EXTRAS=egress -t tokengate-egress:0.1.0 .
# Bytecode is compiled here, hash-checked rather than mtime-checked, because the
# runtime filesystem is read-only; the last steps prove the entry point (and the
# relay, when built in) imports.
ARG EXTRAS=""
RUN /opt/tokengate/bin/pip install --no-cache-dir -c constraints.txt ".${EXTRAS:+[${EXTRAS}]}" \
    && /opt/tokengate/bin/python -m compileall -q -f --invalidation-mode unchecked-hash \
       /opt/tokengate/lib \
    && /opt/tokengate/bin/tokengate --help > /dev/null \
    && case ",${EXTRAS}," in *,egress,*) /opt/tokengate/bin/python -c "import proxy.egress.server";; esac

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="tokengate" \
      org.opencontainers.image.description="Sidecar gateway: sessions, request proofs, tokenization, attested TEEs" \
      org.opencontainers.image.licenses="Apache-2.0"
# Read-only root filesystem: no bytecode writes at run time (compiled at build),
# temp files on the /tmp tmpfs, state under the /var/lib/tokengate volume.
ENV PATH=/opt/tokengate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    TMPDIR=/tmp \
    HOME=/var/lib/tokengate
RUN groupadd --system --gid 10001 tokengate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/tokengate --shell /usr/sbin/nologin tokengate \
    && mkdir -p /var/lib/tokengate /etc/tokengate \
    && chown 10001:10001 /var/lib/tokengate \
    && chmod 0700 /var/lib/tokengate
COPY --from=builder /opt/tokengate /opt/tokengate
USER 10001:10001
WORKDIR /var/lib/tokengate
VOLUME ["/var/lib/tokengate"]
# 8080 public listener, 8081 admin listener (health, readiness, metrics);
# an image built with EXTRAS=egress also serves the relay, by default on 8090/8091.
EXPOSE 8080 8081
# slim has no curl: ask the admin listener with urllib, ignoring any proxy variables.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8081/.tokengate/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tokengate"]
CMD ["serve", "--config", "/etc/tokengate/gateway.yaml"]
