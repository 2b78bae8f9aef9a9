"""confluent-kafka keeps, per client, a record of the blocking call under way (consume(), poll()),
which every callback that librdkafka makes during that call needs. A blocking call on the same
client from inside a callback clears that record, and the next callback of the outer call then
aborts the whole process (``CallState_get: Assertion `cs != NULL' failed``). The processors do real
work in their rebalance callbacks (offsets, metadata, restoring state), so this checks that none of
it goes through the consumer itself: a worker whose consumer has statistics callbacks queued up
behind a slow assignment must survive them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid

import pytest

from hub.kafka import ensure_topics
from hub.topics import all_topics

pytestmark = pytest.mark.kafka

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from hub.agreements import load_agreements
    from hub.codec import Codec
    from hub.routing import Router
    from hub.worker import RouterWorker

    bootstrap, group = sys.argv[1:3]
    seen = []

    class SlowToRestore(RouterWorker):
        def _restore(self, partitions):
            # Inside the assignment callback: statistics events queue up behind it, to be served
            # by the same consume() call once the callback returns.
            time.sleep(0.5)
            return super()._restore(partitions)

    worker = SlowToRestore(bootstrap, Router(codec=Codec(), agreements=load_agreements()),
                           group_id=group, instance="cb", auto_offset_reset="latest")
    worker.connection.update({"stats_cb": seen.append, "statistics.interval.ms": 50})
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run_blocking, args=(stop,), kwargs={"ready": ready})
    thread.start()
    assigned = ready.wait(60)
    time.sleep(1.0)
    stop.set()
    thread.join(60)
    print("assigned" if assigned else "never assigned", len(seen))
    """
)


def test_callbacks_after_a_slow_assignment_do_not_abort_the_worker(kafka_bootstrap: str) -> None:
    asyncio.run(ensure_topics(kafka_bootstrap, all_topics(["TH", "MM"]), partitions=6))
    group = f"test-callbacks-{uuid.uuid4().hex[:8]}"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, kafka_bootstrap, group],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, f"the worker died (exit {child.returncode}):\n{child.stderr[-3000:]}"
    verdict, served = child.stdout.strip().splitlines()[-1].rsplit(" ", 1)  # the log comes first
    assert verdict == "assigned", child.stdout
    assert int(served) > 0, "statistics callbacks were served"
