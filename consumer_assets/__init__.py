"""consumer_assets: predict which shoppers will order in the coming week, as Dagster assets."""
