"""The configuration of a Lintas Kafka node: the one place it is written, for the embedded broker,
the local three-node cluster and the containers of ``docker/compose.yaml`` alike.

Pure: a :class:`NodeConfig` in, ``server.properties`` entries out.

Security (``sasl_ssl``): clients connect only over TLS with SCRAM-SHA-512 on the ``CLIENT``
listener; nodes reach each other on ``INTERNAL`` (replication) and ``CONTROLLER`` (the KRaft
quorum) over mutual TLS, identified by their certificates. KRaft controllers cannot check SCRAM
passwords (the credentials live in the very metadata they serve), hence certificates there. The
StandardAuthorizer refuses whatever no ACL allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hub.broker.tls import node_principal

__all__ = ["OPERATOR", "SCRAM_MECHANISM", "NodeAddress", "NodeConfig", "Security", "server_properties"]

Security = Literal["sasl_ssl", "plaintext"]
#: The super user created when storage is formatted; it applies the ACLs of everyone else.
OPERATOR = "operator"
SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class NodeAddress:
    """Where one node listens: its host and the ports of its three listeners."""

    node_id: int
    host: str
    client_port: int
    internal_port: int
    controller_port: int


@dataclass(frozen=True)
class NodeConfig:
    node: NodeAddress
    #: Every voter of the quorum, this node included.
    voters: Sequence[NodeAddress]
    data_dir: Path
    security: Security = "sasl_ssl"
    #: ``key + certificate + CA`` PEM of this node, and the CA clients and peers are checked against.
    keystore: Path | None = None
    truststore: Path | None = None
    #: Bind address (``0.0.0.0`` in a container); the advertised host is ``node.host``.
    bind_host: str | None = None
    #: Replication of the internal topics and default of new ones; at most the number of nodes.
    replication_factor: int | None = None
    #: Settings that make a small local broker start and recover fast (see ``_LOCAL_TUNING``).
    local_tuning: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return len(self.voters)


def _listener(name: str, host: str, port: int) -> str:
    return f"{name}://{host}:{port}"


def server_properties(config: NodeConfig) -> dict[str, str]:
    """The ``server.properties`` of one combined broker + controller node."""
    node = config.node
    bind = config.bind_host or node.host
    replicas = min(config.replication_factor or config.nodes, config.nodes)
    # With three replicas, a write is acknowledged by two: one node may be lost without losing it,
    # and writes stop (NotEnoughReplicas) rather than go on with a single copy.
    min_isr = 2 if replicas >= 3 else 1
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(
            f"{voter.node_id}@{voter.host}:{voter.controller_port}" for voter in config.voters
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL",
        "log.dirs": str(config.data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "unclean.leader.election.enable": "false",
    }
    listeners = [
        _listener("CLIENT", bind, node.client_port),
        _listener("INTERNAL", bind, node.internal_port),
        # The quorum never leaves the nodes' own network.
        _listener("CONTROLLER", bind, node.controller_port),
    ]
    props["listeners"] = ",".join(listeners)
    props["advertised.listeners"] = ",".join(
        [
            _listener("CLIENT", node.host, node.client_port),
            _listener("INTERNAL", node.host, node.internal_port),
        ]
    )
    if config.security == "plaintext":
        props["listener.security.protocol.map"] = "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    else:
        if config.keystore is None or config.truststore is None:
            raise ValueError("sasl_ssl needs a keystore and a truststore")
        principals = [OPERATOR, *(node_principal(voter.node_id) for voter in config.voters)]
        props.update(
            {
                "listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
                "sasl.enabled.mechanisms": SCRAM_MECHANISM,
                "listener.name.client.sasl.enabled.mechanisms": SCRAM_MECHANISM,
                "listener.name.client.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                "listener.name.client.ssl.client.auth": "none",
                # Connections re-authenticate hourly: a revoked or rotated password stops working
                # within the hour even on a connection opened before.
                "listener.name.client.connections.max.reauth.ms": str(_REAUTH_MS),
                "listener.name.internal.ssl.client.auth": "required",
                "listener.name.controller.ssl.client.auth": "required",
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(config.keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(config.truststore),
                "ssl.endpoint.identification.algorithm": "https",
                "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
                # A node's certificate says CN=lintas-broker-<id>: that is its principal.
                "ssl.principal.mapping.rules": "RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found": "false",
                "super.users": ";".join(f"User:{name}" for name in principals),
            }
        )
    if config.local_tuning:
        props.update(_LOCAL_TUNING)
    props.update(config.extra)
    return props


_REAUTH_MS = 3_600_000

#: A local broker holds little data and is restarted by tests constantly.
_LOCAL_TUNING = {
    # Fewer internal partitions: first group/transaction use is created much faster.
    "offsets.topic.num.partitions": "5",
    "transaction.state.log.num.partitions": "5",
    # Tests join groups constantly; the default 3 s delay only slows them down.
    "group.initial.rebalance.delay.ms": "0",
    # Abort timed-out transactions in seconds, not a minute, so fault tests stay short.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "5000",
    "transaction.remove.expired.transaction.cleanup.interval.ms": "60000",
    # After a SIGKILL the controller rejects the restarted broker as a duplicate until the old
    # session expires (9 s by default); keep crash-restart tests quick.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    # Small segments and buffers.
    "log.segment.bytes": str(16 * 1024 * 1024),
    "log.index.size.max.bytes": str(1024 * 1024),
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    "num.network.threads": "2",
    "num.io.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
}
