# sandload as a container image: `sandload serve` over the models mounted at /models.
#
#   docker build -t sandload .                                  # full build (Rust stage + runtime)
#   docker build --target runtime-prebuilt -t sandload .        # runtime + target/release/sandload from the context
#
# The sandbox needs three runtime options (see docs/CONTAINER.md); without them sandload
# refuses with exit 7 and names the missing one, and runs nothing:
#   docker run --security-opt seccomp=policies/container-seccomp.json \
#              --security-opt systempaths=unconfined -v "$PWD/models:/models:ro" -p 8000:8000 sandload
#
# Base images are chosen by build arguments so an offline CI can feed locally made ones
# (scripts/container-test.sh builds PY_BASE from debootstrap).
ARG PY_BASE=python:3.11-slim-bookworm
ARG RUST_IMAGE=rust:1-bookworm

# ---- build: the release binary ----------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY policies ./policies
# The release profile keeps line tables (debug = 1); the image does not need them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && strip --strip-debug target/release/sandload \
    && install -m 0755 target/release/sandload /usr/local/bin/sandload

# ---- runtime-base: the pinned Python stack, the user, the entrypoint ----------------------
FROM ${PY_BASE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# A CA bundle for pip behind a TLS-inspecting proxy (CI passes the host's; empty = pip's own).
ARG BUILD_CA_BUNDLE=""
# python:3.11-slim-bookworm has /usr/local/bin/python3.11; a bare Debian base (debootstrap,
# debian:bookworm-slim) gets Debian's python3.11 and venv module.
# hadolint ignore=DL3008
RUN if ! command -v python3.11 >/dev/null; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3.11 -m venv /opt/sandload/venv
COPY scripts/requirements-tf212.txt /opt/sandload/requirements.txt
# pip's cache: a BuildKit cache mount by default; podman builds (whose cache mounts do not
# outlive the build) point it at a host directory lent with --volume instead.
ARG PIP_CACHE_DIR=/root/.cache/pip
# Byte-compiled on install: the sandbox's filesystem is read-only, so without .pyc files every
# start would compile TensorFlow's sources again.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/sandload/venv/bin/python -m pip install --disable-pip-version-check -q \
        ${BUILD_CA_BUNDLE:+--cert "$BUILD_CA_BUNDLE"} --upgrade pip==24.0 wheel==0.43.0 \
    && /opt/sandload/venv/bin/python -m pip install --disable-pip-version-check -q \
        ${BUILD_CA_BUNDLE:+--cert "$BUILD_CA_BUNDLE"} -r /opt/sandload/requirements.txt \
    && TF_CPP_MIN_LOG_LEVEL=2 /opt/sandload/venv/bin/python -c 'import tensorflow, keras, h5py' \
    && groupadd --gid 10001 sandload \
    && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin sandload \
    && mkdir -p /models
COPY policies /usr/local/share/sandload/policies

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sandload" \
      org.opencontainers.image.description="Load and run untrusted Keras models inside a fail-closed Linux sandbox (TensorFlow 2.12)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/CONTAINER.md"

ENV SANDLOAD_PYTHON=/opt/sandload/venv/bin/python
# Unprivileged: sandload builds its sandbox inside a user namespace it creates; it needs no
# capability (run with --cap-drop=ALL).
USER 10001:10001
WORKDIR /
EXPOSE 8000
# sandload as PID 1 forwards SIGTERM to the server and reaps orphans (no tini needed).
ENTRYPOINT ["sandload"]
CMD ["serve", "--model-dir", "/models", "--listen", "0.0.0.0:8000"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/opt/sandload/venv/bin/python", "-I", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"]

# ---- runtime-prebuilt: a host-built binary (offline CI, where no Rust image can be pulled) --
FROM runtime-base AS runtime-prebuilt
COPY target/release/sandload /usr/local/bin/sandload

# ---- runtime (default target): the binary from the build stage ----------------------------
FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/sandload /usr/local/bin/sandload
