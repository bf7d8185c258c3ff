# The code location as an image: Dagster's gRPC code server for consumer_assets, with Java for Spark.
# Build: docker build -t consumer-assets .
# Run:   docker run -p 127.0.0.1:4000:4000 -e CONSUMER_ASSETS_STORAGE=s3://bucket/prefix consumer-assets
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/consumer_assets
COPY setup.py pyproject.toml constraints.txt workspace.yaml README.md ./
COPY consumer_assets ./consumer_assets
# The CPU build of torch: the image never needs CUDA for scoring; GPU training images override this.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
    -c constraints.txt .

ENV DAGSTER_HOME=/opt/dagster/home
RUN mkdir -p $DAGSTER_HOME && useradd --create-home dagster && chown -R dagster $DAGSTER_HOME
USER dagster

EXPOSE 4000
# 0.0.0.0 inside the container's own network namespace; publish the port to 127.0.0.1 on the host
# (as above) unless the webserver runs elsewhere.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "consumer_assets.definitions"]
