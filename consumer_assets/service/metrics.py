"""Request counts, error counts and latency in Prometheus' text exposition format (version 0.0.4).

prometheus_client is not a dependency of this project, and these few series need no more than this.
The app (service.app) times each request to its last byte and records it by route (one of the
app's, else "other": paths never become labels) and status.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

PREFIX = "consumer_assets_serve"
# Upper bounds of the latency histogram's buckets, in seconds.
BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(str(v))}"' for k, v in labels.items()) + "}"


class Metrics:
    """Counters and one histogram per route, safe to update from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.seconds: dict[str, float] = defaultdict(float)
        self.swaps = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[route, str(status)] += 1
            self.buckets[route][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.seconds[route] += seconds

    def swapped(self) -> None:
        with self._lock:
            self.swaps += 1

    def render(self, info: dict[str, str], profiles: int, batches: int = 0, asks: int = 0) -> str:
        """The exposition text; `info` labels the model version and histories day in use; `batches` and
        `asks`: the scoring passes so far and the asks they scored (serving.batching)."""
        with self._lock:
            requests, buckets, seconds = (
                dict(self.requests),
                {k: list(v) for k, v in self.buckets.items()},
                dict(self.seconds),
            )
            swaps = self.swaps
        lines = [
            f"# HELP {PREFIX}_requests_total Requests answered, by route and HTTP status.",
            f"# TYPE {PREFIX}_requests_total counter",
            *(f"{PREFIX}_requests_total{_labels(route=r, status=s)} {n}" for (r, s), n in sorted(requests.items())),
            f"# HELP {PREFIX}_errors_total Requests answered with an error: client (4xx) or server (5xx).",
            f"# TYPE {PREFIX}_errors_total counter",
        ]
        errors: dict[tuple[str, str], int] = defaultdict(int)
        for (route, status), n in requests.items():
            if int(status) >= 400:
                errors[route, "server" if int(status) >= 500 else "client"] += n
        lines += [f"{PREFIX}_errors_total{_labels(route=r, kind=k)} {n}" for (r, k), n in sorted(errors.items())]
        lines += [
            f"# HELP {PREFIX}_request_seconds Time from a request's arrival to its answer's last byte.",
            f"# TYPE {PREFIX}_request_seconds histogram",
        ]
        for route, counts in sorted(buckets.items()):
            total = 0
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                total += n
                lines.append(f"{PREFIX}_request_seconds_bucket{_labels(route=route, le=bound)} {total}")
            lines.append(f"{PREFIX}_request_seconds_sum{_labels(route=route)} {seconds[route]}")
            lines.append(f"{PREFIX}_request_seconds_count{_labels(route=route)} {total}")
        lines += [
            f"# HELP {PREFIX}_info The model version and histories day answers are computed with.",
            f"# TYPE {PREFIX}_info gauge",
            f"{PREFIX}_info{_labels(**info)} 1",
            f"# HELP {PREFIX}_profiles Profiles in the histories state loaded.",
            f"# TYPE {PREFIX}_profiles gauge",
            f"{PREFIX}_profiles {profiles}",
            f"# HELP {PREFIX}_swaps_total Newer models or histories days swapped in since the start.",
            f"# TYPE {PREFIX}_swaps_total counter",
            f"{PREFIX}_swaps_total {swaps}",
            f"# HELP {PREFIX}_batches_total Scoring passes that succeeded (asks that arrive together share one).",
            f"# TYPE {PREFIX}_batches_total counter",
            f"{PREFIX}_batches_total {batches}",
            f"# HELP {PREFIX}_batched_asks_total Asks scored by those passes.",
            f"# TYPE {PREFIX}_batched_asks_total counter",
            f"{PREFIX}_batched_asks_total {asks}",
        ]
        return "\n".join(lines) + "\n"
