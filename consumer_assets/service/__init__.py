"""The real-time scoring service over HTTP: a thin ASGI app around consumer_assets.serving.

`app` routes and answers JSON, `metrics` counts requests in Prometheus' text format, `logs` writes
one JSON object per log line. `consumer-assets serve` runs it under uvicorn.
"""
