"""A principal that may not create topics is told so at once, with what to do instead."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.broker.local import LocalBroker
from hub.errors import BrokerError
from hub.kafka import ensure_topics
from tests.conftest import new_topic_name

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(120)
def test_creating_topics_without_the_right_is_refused_at_once(secure_kafka: LocalBroker) -> None:
    bootstrap = secure_kafka.status().bootstrap  # type: ignore[union-attr]
    name = new_topic_name("refused")
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"not allowed to create .*lintas topics init"):
        asyncio.run(
            ensure_topics(bootstrap, [name], partitions=1, options=secure_kafka.client_options("fp-th"))
        )
    assert time.monotonic() - started < 20  # not the 30 s wait for leaders that never come
    # The operator may.
    report = asyncio.run(
        ensure_topics(bootstrap, [name], partitions=1, options=secure_kafka.client_options())
    )
    assert report.created == (name,)
