"""Shared fixtures.

Kafka: tests marked ``kafka`` take ``kafka_bootstrap``. It points at ``$LINTAS_BOOTSTRAP_SERVERS``
when set (an external broker), otherwise at real local Kafka started for the whole session by
``hub.broker.local``: one node, or a three-node KRaft cluster with ``LINTAS_TEST_NODES=3``. That
shared broker speaks PLAINTEXT on loopback so that tests of routing need no credentials; the
security tests take ``secure_kafka``, a broker as ``lintas broker start`` runs it (SASL_SSL,
SCRAM-SHA-512, ACLs enforced). If no broker can be had, the tests are skipped locally but fail
under CI (``CI=true``): a missing broker must never pass silently there.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from hub.broker.local import BrokerError, LocalBroker, LocalCluster, provision


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
    nodes = int(os.environ.get("LINTAS_TEST_NODES", "1"))
    home = tmp_path_factory.mktemp("kafka")
    broker: LocalBroker | LocalCluster
    if nodes > 1:
        broker = LocalCluster(home, libs, nodes=nodes, security="plaintext")
    else:
        broker = LocalBroker(home, libs, security="plaintext")
    try:
        bootstrap = broker.start(timeout=START_TIMEOUT_S)
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


#: A busy CI machine can take a minute to bring a KRaft node up; failing then helps nobody.
START_TIMEOUT_S = 180.0

#: The countries whose principals the secured test broker is formatted with.
SECURE_COUNTRIES = ("TH", "MM", "LA")


@pytest.fixture(scope="session")
def secure_kafka(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A started broker secured as ``lintas broker start`` secures it: SASL_SSL with SCRAM-SHA-512,
    the StandardAuthorizer denying whatever no ACL allows, a principal of each hub worker and of each
    of ``SECURE_COUNTRIES``' national systems and focal points (no ACLs applied yet)."""
    from hub.security.principals import principals

    users = tuple(principal.name for principal in principals(SECURE_COUNTRIES))
    broker = LocalBroker(tmp_path_factory.mktemp("kafka-secure"), kafka_libs, users=users)
    try:
        broker.start(timeout=START_TIMEOUT_S)
    except BrokerError as exc:
        broker.stop()
        reason = f"cannot start the secured local Kafka: {exc}"
    else:
        reason = ""
    if reason:
        broker_unavailable(reason)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def own_broker(kafka_libs: Path, tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own, for tests whose input must be exactly what they publish."""
    broker = LocalBroker(tmp_path / "kafka", kafka_libs, security="plaintext")
    try:
        yield broker.start(timeout=START_TIMEOUT_S)
    finally:
        broker.stop()
