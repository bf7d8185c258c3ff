"""Spark for the aggregation: dagster-pyspark's PySparkResource, with the master chosen at run time."""

import os
import sys
from typing import Any

import dagster as dg
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config
from pydantic import Field
from pyspark.sql import SparkSession

from consumer_assets.settings import SPARK_MASTER_ENV, spark_master

# Defaults for every session; `spark_config` overrides any of them.
BASE_CONFIG: dict[str, str] = {
    "spark.app.name": "consumer_assets",
    "spark.sql.session.timeZone": "UTC",
    # Progress bars garble the run logs that Dagster captures.
    "spark.ui.showConsoleProgress": "false",
}
# On one machine the driver and its UI listen on loopback only; a cluster deployment sets its own.
LOCAL_CONFIG: dict[str, str] = {
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.ui.enabled": "false",
}


class SparkResource(PySparkResource):
    """A SparkSession per run: `local[*]` by default, any master URL (`spark://...`, `yarn`) by config.

    The master comes from `master`, else $CONSUMER_ASSETS_SPARK_MASTER, read when the run starts;
    `spark_config` carries any other Spark setting (executor memory, s3a credentials provider, ...).
    """

    spark_config: dict[str, Any] = Field(default_factory=dict, description="Extra Spark settings.")
    master: str | None = Field(default=None, description=f"Spark master URL; default ${SPARK_MASTER_ENV} or local[*].")
    reads_storage: bool = Field(
        default=False,
        description="Executors read raw_events from the storage root and write histories into its tables themselves "
        "(a cluster with S3 access, e.g. EMR). Off: inputs are staged on the driver's local disk, and so are outputs "
        "unless the storage root is local.",
    )

    def resolved_config(self) -> dict[str, Any]:
        master = spark_master(self.master)
        local = master.startswith(("local", "spark://127.0.0.1", "spark://localhost"))
        return {**BASE_CONFIG, **(LOCAL_CONFIG if local else {}), **self.spark_config, "spark.master": master}

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        config = self.resolved_config()
        # Python workers run the histories' Arrow tasks, so they need this environment's packages;
        # pyspark takes their interpreter from PYSPARK_PYTHON (else whatever `python3` is on PATH).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if config.get("spark.driver.bindAddress") == "127.0.0.1":
            # The JVM that pyspark starts binds its block manager and shuffle ports here too.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # getOrCreate would hand back a session left by an earlier run, with that run's settings.
        active = SparkSession.getActiveSession()
        if active is not None:
            current = dict(active.sparkContext.getConf().getAll())
            if any(current.get(key) != str(value) for key, value in config.items()):
                active.stop()
        self._spark_session = spark_session_from_config(config)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark_session is not None and self.master_is_remote():
            # A cluster's executors are held for the session: give them back when the run ends.
            self._spark_session.stop()

    def master_is_remote(self) -> bool:
        return not spark_master(self.master).startswith("local")
