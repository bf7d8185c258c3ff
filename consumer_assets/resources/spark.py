"""Spark for the aggregation: a session per run through dagster-pyspark's public resource, master chosen at run time.

Every setting travels as Spark configuration, never as process environment, so a long-lived
process (the webserver's run worker, a test session) gets each run's own settings.
"""

import sys
from typing import Any
from urllib.parse import urlparse

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from consumer_assets.settings import SPARK_MASTER_ENV, spark_master

# Defaults for every session; `spark_config` overrides any of them.
BASE_CONFIG: dict[str, str] = {
    "spark.app.name": "consumer_assets",
    "spark.sql.session.timeZone": "UTC",
    # Progress bars garble the run logs that Dagster captures.
    "spark.ui.showConsoleProgress": "false",
}
# With the master on this machine (local mode or a cluster on loopback) the driver and its UI
# listen on loopback only, and Python workers run this environment's interpreter, where
# consumer_assets and pyarrow are installed. A remote cluster sets its own.
ON_THIS_MACHINE_CONFIG: dict[str, str] = {
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.pyspark.python": sys.executable,
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class SparkResource(dg.ConfigurableResource):
    """A SparkSession per run: `local[*]` by default, any master URL (`spark://...`, `yarn`) by config.

    The master comes from `master`, else $CONSUMER_ASSETS_SPARK_MASTER, read when the run starts;
    `spark_config` carries any other Spark setting (executor memory, `spark.executorEnv.*`, ...).
    """

    spark_config: dict[str, Any] = Field(default_factory=dict, description="Extra Spark settings.")
    master: str | None = Field(default=None, description=f"Spark master URL; default ${SPARK_MASTER_ENV} or local[*].")
    reads_storage: bool = Field(
        default=False,
        description="Executors read raw_events from the storage root and write histories into its tables themselves "
        "(a cluster with S3 access, e.g. EMR). Off: inputs are staged on the driver's local disk, and so are outputs "
        "unless the storage root is local.",
    )
    _pyspark: LazyPySparkResource | None = PrivateAttr(default=None)

    def master_url(self) -> str:
        return spark_master(self.master)

    def in_process(self) -> bool:
        """Local mode: the executors are threads of the driver's JVM."""
        return self.master_url().startswith("local")

    def on_this_machine(self) -> bool:
        """Local mode, or a standalone cluster whose master listens on loopback."""
        master = self.master_url()
        return self.in_process() or (master.startswith("spark://") and urlparse(master).hostname in LOOPBACK_HOSTS)

    def resolved_config(self) -> dict[str, Any]:
        loopback = ON_THIS_MACHINE_CONFIG if self.on_this_machine() else {}
        return {**BASE_CONFIG, **loopback, **self.spark_config, "spark.master": self.master_url()}

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        config = self.resolved_config()
        # getOrCreate would hand back a session left by an earlier run, with that run's settings.
        active = SparkSession.getActiveSession()
        if active is not None:
            current = dict(active.sparkContext.getConf().getAll())
            if any(current.get(key) != str(value) for key, value in config.items()):
                active.stop()
        # The session starts when an asset first asks for it, not for runs that never do.
        self._pyspark = LazyPySparkResource(spark_config=config)

    @property
    def spark_session(self) -> SparkSession:
        if self._pyspark is None:
            raise RuntimeError("the Spark session exists only while a run uses this resource")
        session = self._pyspark.spark_session
        python = self._pyspark.spark_config.get("spark.pyspark.python")
        if python:
            # PySpark hands its Python functions (mapInArrow) the interpreter in SparkContext.pythonExec,
            # which it reads from $PYSPARK_PYTHON alone; set it from the configuration instead.
            session.sparkContext.pythonExec = python
        return session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        active = SparkSession.getActiveSession()
        if active is not None and not self.in_process():
            # A cluster's executors are held for the session: give them back when the run ends.
            active.stop()
        self._pyspark = None
