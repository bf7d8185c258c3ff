"""The `consumer-assets` command: the product's own commands (simulate the shop, run the main job)."""

from __future__ import annotations

import datetime as dt
import json

import click

from consumer_assets.windows import STORY

# Each shared option is defined once, with one default, for both commands.
START = click.option(
    "--start", default="2026-10-01", show_default=True, type=click.DateTime(["%Y-%m-%d"]), help="First day."
)
# The main job's default covers the whole chain: a histories window, the label week, the training days.
DAYS = click.option("--days", default=41, show_default=True, type=click.IntRange(min=1), help="Days to simulate.")
PROFILES = click.option(
    "--profiles", default=20_000, show_default=True, type=click.IntRange(min=1), help="Shopper profiles."
)
SEED = click.option("--seed", default=7, show_default=True, type=int, help="Random seed; same seed, same events.")
CORRUPT = click.option(
    "--corrupt",
    default=0.002,
    show_default=True,
    type=click.FloatRange(0.0, 0.5),
    help="Share of landed lines to corrupt with realistic bad records.",
)


@click.group()
def main() -> None:
    """consumer_assets: daily order-propensity predictions for a fashion shop."""


@main.command()
@click.option("--landing", required=True, help="Landing-zone URI: a path, file:///... or s3://bucket/prefix.")
@START
@DAYS
@PROFILES
@SEED
@CORRUPT
@click.option("--truth", default=None, help="Optional URI for the per-day ground-truth order probabilities.")
@click.option(
    "--sale-start",
    default=None,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of a sale (a regime change), YYYY-MM-DD; no sale without it.",
)
@click.option("--sale-days", default=7, show_default=True, type=click.IntRange(min=1), help="Length of the sale.")
@click.option(
    "--sale-lift",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0.0, 10.0, min_open=True),
    help="Conversion multiplier on sale days.",
)
@click.option(
    "--sale-activity",
    default=None,
    type=click.FloatRange(0.0, 4.0, min_open=True),
    help="Shopping-activity multiplier on sale days (visits, mission starts); default: the sale lift.",
)
def simulate(
    landing: str,
    start: dt.datetime,
    days: int,
    profiles: int,
    seed: int,
    corrupt: float,
    truth: str | None,
    sale_start: dt.datetime | None,
    sale_days: int,
    sale_lift: float,
    sale_activity: float | None,
) -> None:
    """Simulate the shop: write DAYS days of tracking events to the landing zone."""
    from consumer_assets.simulation import Sale, simulate_to_landing

    sale = Sale(sale_start.date(), sale_days, sale_lift, sale_activity) if sale_start else None
    for summary in simulate_to_landing(
        landing, start.date(), days, profiles=profiles, seed=seed, corrupt=corrupt, truth_uri=truth, sale=sale
    ):
        click.echo(json.dumps(summary.as_dict()))


@main.command()
@START
@click.option(
    "--days",
    default=len(STORY),
    show_default=True,
    type=click.IntRange(min=1),
    help="Days to simulate: the default trains on and scores the day a week before the last, which the last "
    "week's orders then judge.",
)
@PROFILES
@SEED
@CORRUPT
@click.option("--verbose", is_flag=True, help="Print Dagster's event log, Spark's and the libraries' output here.")
def run(start: dt.datetime, days: int, profiles: int, seed: int, corrupt: float, verbose: bool) -> None:
    """The main job: simulate days of the shop, then ingest, build histories, train, predict and judge."""
    from consumer_assets.automation.report import head
    from consumer_assets.automation.runner import run_days
    from consumer_assets.definitions import defs
    from consumer_assets.settings import dagster_home, data_dir, storage_uri

    log = None if verbose else data_dir() / "logs" / f"run-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.log"
    failed, scored, judged = None, None, False
    reports = run_days(
        defs,
        start.date(),
        days,
        profiles=profiles,
        seed=seed,
        corrupt=corrupt,
        echo=click.echo,
        on_start=lambda stage: click.echo(head(stage.what, stage.days()) + " ", nl=verbose),
        log=log,
    )
    for report in reports:
        click.echo("\n".join(report.lines()))
        if not report.success:
            failed = report
        elif report.asset == "predictions":
            scored = report.days[-1]
        judged |= report.asset == "prediction_quality"
    if failed is not None:
        where = "above" if verbose else f"in {log}"
        raise click.ClickException(f"{failed.asset} failed for {failed.days[-1]}: its full log is {where}")
    click.echo(f"outputs: {storage_uri()} (Delta tables and model artifacts)")
    click.echo(f"runs: the Dagster instance {dagster_home()}; `make dev` shows them, their checks and metadata")
    if scored:
        top = f"consumer-assets predictions --day {scored}"
        click.echo(f"next: `.venv/bin/{top}` lists the profiles most likely to order")
    if scored and not judged:
        click.echo(f"prediction_quality[{scored}] needs the 7 days after it: run with --days {len(STORY)} or more")
    if log is not None:
        click.echo(f"Dagster's, Spark's and the libraries' own output: {log} (or run with --verbose)")


@main.command("predictions")
@click.option("--day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The day scored (its partition).")
@click.option("--top", default=20, show_default=True, type=click.IntRange(min=1), help="Profiles to show.")
@click.option("--storage", default=None, help="Storage root URI (default: where the main job writes).")
def predictions_command(day: dt.datetime, top: int, storage: str | None) -> None:
    """The profiles most likely to order after DAY, each with the three events that moved it most."""
    import pyarrow.compute as pc

    from consumer_assets.ml.monitoring.explain import in_words
    from consumer_assets.ml.scoring.predictions import in_rank_order, top_profiles
    from consumer_assets.settings import storage_uri
    from consumer_assets.storage.tables import TableStore

    store, key = TableStore.at(storage_uri(storage)), day.date().isoformat()
    if key not in store.dates("predictions"):
        raise click.ClickException(
            f"no predictions of {key} under {storage_uri(storage)}: materialize predictions[{key}]"
        )
    scores = store.read("predictions", [key], columns=["profile_id", "probability"])
    chosen = top_profiles(scores, top)
    columns = ["profile_id", "probability", "model_version", "explanations"]
    best = store.dataset("predictions", [key]).to_table(columns=columns, filter=pc.field("profile_id").isin(chosen))
    rows = in_rank_order(best, chosen)
    click.echo(
        f"predictions of {key}: the top {len(rows)} of {scores.num_rows} profiles, model {rows[0]['model_version']}"
    )
    for rank, row in enumerate(rows, 1):
        why = "; ".join(in_words(e) for e in row["explanations"])
        click.echo(f"{rank:>4}  {row['profile_id']}  {row['probability']:.3f}  {why}")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 for every interface.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--day",
    default=None,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Serve the histories state of this day (kept while newer days are committed); default: the latest "
    "committed day, followed as new days are committed.",
)
@click.option("--storage", default=None, help="Storage root URI (default: where the main job writes).")
@click.option(
    "--poll-seconds",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="How often to look for a newer approved model or histories day; default "
    "$CONSUMER_ASSETS_SERVE_POLL_SECONDS, else 30.",
)
@click.option(
    "--cache",
    default=None,
    help="Local folder for the served copy of the histories state (built once per day); default "
    "$CONSUMER_ASSETS_SERVE_CACHE, else data/serve-cache.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes answering on the port, sharing the cached state (one per core).",
)
def serve_command(
    host: str,
    port: int,
    day: dt.datetime | None,
    storage: str | None,
    poll_seconds: float | None,
    cache: str | None,
    workers: int,
) -> None:
    """Score single profiles over HTTP in real time, with the approved model and the histories state."""
    from consumer_assets.service.run import serve
    from consumer_assets.settings import serve_cache, serve_poll_seconds, storage_uri

    day_ = day.date() if day else None
    serve(storage_uri(storage), host, port, day_, serve_poll_seconds(poll_seconds), serve_cache(cache), workers)


@main.command("dagster-home")
def dagster_home_command() -> None:
    """Print the Dagster instance folder every command uses (created with telemetry off)."""
    from consumer_assets.settings import dagster_home

    click.echo(str(dagster_home()))
