"""One node of a deployed cluster (``docker/compose.yaml``): the same configuration as the embedded
broker's (``hub.broker.config``), run in the foreground so that the container's signals reach it.

``write_secrets`` makes what a deployment's nodes and clients share once: the CA, a certificate per
node, and a password per principal, each in its own file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from hub.broker.config import OPERATOR, NodeAddress, NodeConfig, server_properties
from hub.broker.local import _java, format_storage, new_cluster_id, provision
from hub.broker.secrets import CredentialStore
from hub.broker.tls import CertificateAuthority, node_principal
from hub.errors import BrokerError

__all__ = ["parse_voters", "run_node", "write_secrets"]

CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
INTERNAL_PORT = 9094

_LOG4J = (
    "log4j.rootLogger=INFO, stdout\n"
    "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
)


def parse_voters(text: str) -> list[NodeAddress]:
    """``1@kafka-1,2@kafka-2,3@kafka-3`` (optionally ``id@host:controller_port``) as node addresses
    on the default ports."""
    voters = []
    for item in text.split(","):
        node_id, sep, address = item.strip().partition("@")
        host, _, port = address.partition(":")
        if not sep or not node_id.isdigit() or not host:
            raise BrokerError(f"voter {item!r}: expected <node id>@<host>[:<controller port>]")
        voters.append(
            NodeAddress(
                int(node_id), host, CLIENT_PORT, INTERNAL_PORT, int(port) if port else CONTROLLER_PORT
            )
        )
    if len({voter.node_id for voter in voters}) != len(voters):
        raise BrokerError(f"voters {text!r}: a node id appears twice")
    return voters


def write_secrets(out: Path, nodes: int, host_pattern: str, principals: Iterable[str]) -> list[Path]:
    """The CA, ``tls/node-<id>.pem`` for host ``host_pattern.format(id=<id>)``, and a password per
    principal (the operator's included). What exists already is kept: running it again is safe."""
    written: list[Path] = []
    cluster_id = out / "cluster.id"
    if not cluster_id.is_file():
        out.mkdir(parents=True, exist_ok=True)
        cluster_id.write_text(new_cluster_id() + "\n", encoding="utf-8")
        written.append(cluster_id)
    ca = CertificateAuthority.ensure(out / "tls")
    for node_id in range(1, nodes + 1):
        path = out / "tls" / f"node-{node_id}.pem"
        if not path.is_file():
            host = host_pattern.format(id=node_id)
            written.append(ca.issue(path, node_principal(node_id), [host, "localhost", "127.0.0.1"]))
    store = CredentialStore(out / "passwords")
    for user in dict.fromkeys([OPERATOR, *principals]):
        if store.get(user) is None:
            store.ensure(user)
            written.append(store.file(user))
    return written


def node_config(
    node_id: int, voters: Sequence[NodeAddress], secrets: Path, data: Path, bind: str
) -> NodeConfig:
    if node_id not in {voter.node_id for voter in voters}:
        raise BrokerError(f"node {node_id} is not one of the voters {[v.node_id for v in voters]}")
    me = next(voter for voter in voters if voter.node_id == node_id)
    return NodeConfig(
        node=me,
        voters=voters,
        data_dir=data / "data",
        security="sasl_ssl",
        keystore=secrets / "tls" / f"node-{node_id}.pem",
        truststore=secrets / "tls" / "ca.pem",
        bind_host=bind,
        local_tuning=False,
    )


def run_node(config: NodeConfig, secrets: Path, data: Path) -> None:
    """Write ``server.properties`` into ``data``, format the storage on first start with every
    principal's SCRAM credential, then become the JVM (``exec``: signals go straight to Kafka)."""
    try:
        cluster_id = (secrets / "cluster.id").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BrokerError(f"no cluster.id in {secrets}: run `lintas broker secrets` first") from None
    libs = provision()
    java = _java()
    data.mkdir(parents=True, exist_ok=True)
    properties = data / "server.properties"
    properties.write_text("".join(f"{k}={v}\n" for k, v in server_properties(config).items()), "utf-8")
    log4j = data / "log4j.properties"
    log4j.write_text(_LOG4J, encoding="utf-8")
    base = [java, f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{libs}/*"]
    if not (config.data_dir / "meta.properties").is_file():
        store = CredentialStore(secrets / "passwords")
        users = store.users()
        if OPERATOR not in users:
            raise BrokerError(f"no operator password in {store.directory}: run `lintas broker secrets` first")
        format_storage(
            java,
            libs,
            cluster_id,
            properties=properties,
            log4j=log4j,
            data_dir=config.data_dir,
            scram=(store, users),
        )
    os.execv(java, [*base, "-XX:+ExitOnOutOfMemoryError", "kafka.Kafka", str(properties)])  # noqa: S606 - no shell wanted
