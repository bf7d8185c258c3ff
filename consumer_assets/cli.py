"""The `consumer-assets` command: the product's own commands (simulate the shop, run the main job)."""

from __future__ import annotations

import datetime as dt
import json

import click


@click.group()
def main() -> None:
    """consumer_assets: daily order-propensity predictions for a fashion shop."""


@main.command()
@click.option("--landing", required=True, help="Landing-zone URI: a path, file:///... or s3://bucket/prefix.")
@click.option("--start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--days", required=True, type=click.IntRange(min=1), help="Number of days to simulate.")
@click.option("--profiles", required=True, type=click.IntRange(min=1), help="Number of shopper profiles.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed; same seed, same events.")
@click.option(
    "--corrupt",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 0.5),
    help="Share of landed lines to corrupt with realistic bad records.",
)
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
@click.option("--start", default="2026-10-01", show_default=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--profiles", default=20_000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--corrupt", default=0.002, show_default=True, type=click.FloatRange(0.0, 0.5))
def run(start: dt.datetime, days: int, profiles: int, seed: int, corrupt: float) -> None:
    """The main job: simulate days of the shop, then materialize every asset for them."""
    from consumer_assets.automation.runner import run_days
    from consumer_assets.settings import storage_uri

    shown = ("kept", "quarantined", "profiles", "length_p50", "spark_seconds")
    for result in run_days(start.date(), days, profiles=profiles, seed=seed, corrupt=corrupt, echo=click.echo):
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            meta = {k: v.value for k, v in materialization.metadata.items() if k in shown}
            click.echo(f"  {materialization.asset_key.to_user_string()}[{materialization.partition}]: {meta}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                click.echo(f"  check {evaluation.check_name} warned: {evaluation.description}")
        if not result.success:
            raise click.ClickException(f"run {result.run_id} failed; see the log above")
    click.echo(f"done: outputs under {storage_uri()}")


@main.command("dagster-home")
def dagster_home_command() -> None:
    """Print the Dagster instance folder every command uses (created with telemetry off)."""
    from consumer_assets.settings import dagster_home

    click.echo(str(dagster_home()))
