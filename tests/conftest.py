"""Shared fixtures.

Kafka: tests marked ``kafka`` take ``kafka_bootstrap``. It points at ``$LINTAS_BOOTSTRAP_SERVERS``
when set (an external broker), otherwise at one real local broker started for the whole session
by ``hub.broker.local``. If no broker can be had, the tests are skipped locally but fail under CI
(``CI=true``): a missing broker must never pass silently there.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from hub.broker.local import BrokerError, LocalBroker, provision


def broker_unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, because Kafka cannot be provided."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def new_topic_name(prefix: str = "test") -> str:
    """A topic name no other test (or earlier run against the same broker) uses."""
    safe = re.sub(r"[^a-zA-Z0-9._-]", "-", prefix)[:180]
    return f"{safe}.{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The provisioned Kafka jars (cached across runs, see ``hub.broker.local.provision``)."""
    # The skip/fail happens outside ``except`` so reports show the reason, not a chained trace.
    try:
        return provision()
    except BrokerError as exc:
        reason = f"cannot provision local Kafka: {exc}"
    broker_unavailable(reason)


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``host:port`` of a running Kafka broker shared by the session."""
    external = os.environ.get("LINTAS_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    libs: Path = request.getfixturevalue("kafka_libs")
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), libs)
    try:
        bootstrap = broker.start()
    except BrokerError as exc:
        broker.stop()
        reason = f"cannot start local Kafka: {exc}"
    else:
        reason = ""
    if reason:
        broker_unavailable(reason)
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A fresh topic name for this test (not created: auto-creation is off on the test broker)."""
    return new_topic_name(f"test.{request.node.name}")


@pytest.fixture
def own_broker(kafka_libs: Path, tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own, for tests whose input must be exactly what they publish."""
    broker = LocalBroker(tmp_path / "kafka", kafka_libs)
    try:
        yield broker.start()
    finally:
        broker.stop()
