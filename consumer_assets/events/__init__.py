"""The tracking-event contract shared by the simulator, ingestion and the histories."""
