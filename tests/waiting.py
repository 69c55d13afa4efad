"""Waiting on the real job runners the tests start (the embedded pool, a local Ray cluster)."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 60.0, poll: float = 0.1):
    """`predicate()`'s first truthy value, polled every `poll` seconds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout}s")


def training(runner, job_id: str) -> bool:
    """True once the job's worker has reported a training batch or epoch."""
    st = runner.status(job_id)
    return st.state == "running" and any(e.get("event") in ("batch", "epoch") for e in st.events)
