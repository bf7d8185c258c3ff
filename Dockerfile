# syntax=docker/dockerfile:1
# The consumer_assets code location as an image: Dagster's gRPC code server on port 4000, run by an
# unprivileged user, with Java 17 for Spark and the CPU build of torch. docs/deploy/README.md has the
# GPU variant for training (--build-arg TORCH_VARIANT=cu130) and an example production dagster.yaml.
# Build: docker build -t consumer-assets .
# Run:   docker run -p 127.0.0.1:4000:4000 -e CONSUMER_ASSETS_STORAGE=s3://bucket/prefix consumer-assets

# Java 17 for Spark from the Temurin image, so the JRE does not depend on which Debian release the
# Python image is built on.
FROM eclipse-temurin:17-jre AS jre

FROM python:3.11-slim-bookworm

# torch's build: cpu (serving, scoring, CPU training) or a CUDA build the pinned torch release
# publishes on its wheel index (cu130, ...) for the GPU variant.
ARG TORCH_VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JAVA_HOME=/opt/java/openjdk
ENV PATH=/opt/java/openjdk/bin:$PATH
COPY --from=jre /opt/java/openjdk /opt/java/openjdk

WORKDIR /opt/consumer_assets
COPY setup.py pyproject.toml constraints.txt workspace.yaml README.md ./
COPY consumer_assets ./consumer_assets
# constraints.txt pins torch's CPU build (2.13.0+cpu); the GPU variant pins the same release's CUDA
# build instead. The pip cache mount keeps downloads across builds out of the image's layers.
RUN --mount=type=cache,target=/root/.cache/pip \
    sed -i "s/^torch==\([^+]*\)+cpu$/torch==\1+${TORCH_VARIANT}/" constraints.txt \
    && grep -qx "torch==[^+]*+${TORCH_VARIANT}" constraints.txt \
    && pip install --root-user-action=ignore \
        --extra-index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" -c constraints.txt '.[deploy]'

# Everything the code location writes goes under the data dir (the default storage and landing
# roots, the Dagster home): mount a volume there, or point CONSUMER_ASSETS_STORAGE and
# CONSUMER_ASSETS_LANDING at S3. The image's own files stay root's and read-only to the user.
ENV CONSUMER_ASSETS_DATA_DIR=/var/lib/consumer_assets \
    DAGSTER_HOME=/var/lib/consumer_assets/dagster_home
RUN useradd --system --no-log-init --uid 10001 --user-group --no-create-home \
        --home-dir /var/lib/consumer_assets --shell /usr/sbin/nologin consumer_assets \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/consumer_assets
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
# The Dagster home with its dagster.yaml (telemetry off), created by the code's own command.
RUN consumer-assets dagster-home

EXPOSE 4000
HEALTHCHECK --start-period=120s --interval=30s --timeout=20s \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
# Every command first makes sure the Dagster home exists (telemetry off), since a volume mounted on
# the data dir starts empty, then replaces the shell (exec), so the command gets the signals.
ENTRYPOINT ["sh", "-c", "consumer-assets dagster-home > /dev/null && exec \"$@\"", "entrypoint"]
# 0.0.0.0 inside the container's own network namespace; publish the port to 127.0.0.1 on the host
# (as above) unless the webserver and daemon run elsewhere.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "consumer_assets.definitions"]
