"""Helpers for the services the tests start: free loopback ports, polling, the S3 test server's client."""

from __future__ import annotations

import os
import socket
import time

import boto3

S3_CREDENTIALS = {
    # moto accepts any key; these are not secrets, only what the test server is told.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    """Poll `condition` until it holds (no fixed sleeps); fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def s3_client():
    """An independent client (boto3) for reading back what the code under test wrote."""
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
