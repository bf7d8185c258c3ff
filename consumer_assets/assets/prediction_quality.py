"""prediction_quality: how right predictions[D] were, once the 7 days they predicted have landed.

Realized AUC and likelihood, a calibration table (predicted vs observed per decile) and the
business figure: expected against actual ordering profiles. All as numeric metadata, so the UI
plots them over the days; the same figures as a one-row table per day.
"""

import json

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from consumer_assets.assets.conditions import after_upstream_updates
from consumer_assets.assets.declare import daily_asset
from consumer_assets.assets.predictions import PREDICTIONS
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.ml.training.labels import order_profiles
from consumer_assets.ml.training.metrics import auc, calibration_table, expected_calibration_error, nll
from consumer_assets.partitions import partition_day, window_mapping
from consumer_assets.resources.storage import Storage, table_metadata
from consumer_assets.storage.writes import write_dates
from consumer_assets.windows import LABELS

QUALITY = dg.AssetKey("prediction_quality")
# predictions[D] are judged by the orders of D+1 .. D+7.
FOLLOWING_WEEK = window_mapping(LABELS)

QUALITY_SCHEMA = pa.schema(
    [
        pa.field("profiles", pa.int64()),
        pa.field("expected_orders", pa.float64()),
        pa.field("actual_orders", pa.int64()),
        pa.field("auc", pa.float64()),
        pa.field("nll", pa.float64()),
        pa.field("ece", pa.float64()),
        pa.field("model_version", pa.string()),
        pa.field("calibration", pa.string()),  # JSON: per decile count, predicted, observed
    ]
)


@daily_asset(
    key=QUALITY,
    ins={
        "predictions": dg.AssetIn(PREDICTIONS),
        "raw_events": dg.AssetIn(RAW_EVENTS, partition_mapping=FOLLOWING_WEEK),
    },
    group_name="predictions",
    automation_condition=after_upstream_updates(),
)
def prediction_quality(
    context: dg.AssetExecutionContext, storage: Storage, predictions: ds.Dataset, raw_events: ds.Dataset
) -> dg.MaterializeResult:
    """Realized AUC, NLL, calibration and expected vs actual ordering profiles of predictions[D]."""
    key = context.partition_key
    scored = predictions.to_table(columns=["profile_id", "probability", "model_version"])
    orders = raw_events.to_batches(columns=["profile_id", "ts", "event_type"], filter=ds.field("event_type") == "order")
    buyers = order_profiles(orders, [partition_day(key)])["profile_id"]
    y = pc.is_in(scored["profile_id"], value_set=buyers).to_numpy(zero_copy_only=False).astype(np.float64)
    p = scored["probability"].to_numpy(zero_copy_only=False).astype(np.float64)
    calibration = calibration_table(y, p)
    figures = {
        "profiles": len(p),
        "expected_orders": float(p.sum()),
        "actual_orders": int(y.sum()),
        "auc": auc(y, p) if 0 < y.sum() < len(y) else float("nan"),
        "nll": nll(y, p) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p) if len(y) else float("nan"),
    }
    versions = ",".join(pc.unique(scored["model_version"]).to_pylist())
    row = {**figures, "model_version": versions, "calibration": json.dumps(calibration)}
    table = pa.table({name: [row[name]] for name in QUALITY_SCHEMA.names}, schema=QUALITY_SCHEMA)
    commit = write_dates(storage.tables(), QUALITY.path[-1], {key: table}, schema=QUALITY_SCHEMA)
    return dg.MaterializeResult(
        metadata={
            **figures,
            "expected_minus_actual": figures["expected_orders"] - figures["actual_orders"],
            "orders_ratio": figures["actual_orders"] / figures["expected_orders"]
            if figures["expected_orders"]
            else 0.0,
            "model_version": versions,
            "calibration": dg.MetadataValue.table(
                records=[dg.TableRecord(r) for r in calibration],
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn(n, "float") for n in ("bin", "count", "p_min", "p_max", "predicted", "observed")
                    ]
                ),
            ),
            **table_metadata(commit, key, QUALITY_SCHEMA),
        }
    )
