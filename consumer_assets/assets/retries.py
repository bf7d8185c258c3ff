"""Which failures of an asset are retried: storage and network outages, with backoff; nothing else."""

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

# A storage or network outage is retried with exponential backoff (about 10 s, 20 s, 40 s, jittered)
# before the run fails; a retried step starts its write anew, and nothing of a failed attempt is
# committed (storage/tables.py). Any other error (a day not landed, bad data, no approved model, a
# write overtaken by another) fails at once: retrying it would only delay the same answer.
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
NOT_TRANSIENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def transient(exc: BaseException) -> bool:
    """A fault worth retrying: an I/O error of the storage or the network, not a missing or forbidden path."""
    return isinstance(exc, OSError | ConnectionError | TimeoutError) and not isinstance(exc, NOT_TRANSIENT)


def retry_only_transient(fn: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """The asset body, with every error that is not transient raised as a Failure the retry policy skips."""

    @functools.wraps(fn)
    def compute(*args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            result = fn(*args, **kwargs)
            if inspect.isgenerator(result):
                yield from result
            else:
                yield result
        except (dg.Failure, dg.RetryRequested):
            raise
        except Exception as exc:
            if transient(exc):
                raise
            raise dg.Failure(f"{type(exc).__name__}: {exc}", allow_retries=False) from exc

    return compute
