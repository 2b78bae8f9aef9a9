"""The embedded broker's security material and configuration, without a broker: the listeners, the
certificate authority, the password files, the deployment's secrets, and the client options."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from hub.broker.config import OPERATOR, NodeAddress, NodeConfig, server_properties
from hub.broker.local import LocalCluster, _redact, scram_format_args
from hub.broker.node import parse_voters, write_secrets
from hub.broker.secrets import CredentialStore
from hub.broker.tls import CertificateAuthority, TrustContext, client_context
from hub.errors import BrokerError
from hub.kafka import client_options, default_replication, min_insync, topic_config
from hub.processor import rdkafka_options
from hub.settings import Settings

VOTERS = tuple(NodeAddress(i, "127.0.0.1", 9000 + i, 9100 + i, 9200 + i) for i in (1, 2, 3))


def _config(tmp_path: Path, voters: tuple[NodeAddress, ...] = VOTERS, **changes: object) -> NodeConfig:
    base = {
        "node": voters[0],
        "voters": voters,
        "data_dir": tmp_path / "data",
        "keystore": tmp_path / "node.pem",
        "truststore": tmp_path / "ca.pem",
    }
    base.update(changes)
    return NodeConfig(**base)  # type: ignore[arg-type]


def _listeners(props: dict[str, str], key: str) -> dict[str, str]:
    return dict(item.split("://", 1) for item in props[key].split(","))


# -- listeners ---------------------------------------------------------------------------------


def test_clients_authenticate_over_tls_and_nodes_by_certificate(tmp_path: Path) -> None:
    props = server_properties(_config(tmp_path))
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert protocols == {"CLIENT": "SASL_SSL", "INTERNAL": "SSL", "CONTROLLER": "SSL"}
    assert "PLAINTEXT" not in props["listener.security.protocol.map"]
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.internal.ssl.client.auth"] == "required"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"].split(";") == [
        f"User:{OPERATOR}",
        "User:lintas-broker-1",
        "User:lintas-broker-2",
        "User:lintas-broker-3",
    ]
    # Clients are never told about the controllers.
    assert set(_listeners(props, "advertised.listeners")) == {"CLIENT", "INTERNAL"}


def test_the_local_controller_listener_is_loopback_only(tmp_path: Path) -> None:
    listeners = _listeners(server_properties(_config(tmp_path)), "listeners")
    assert listeners["CONTROLLER"].startswith("127.0.0.1:")
    assert all(address.startswith("127.0.0.1:") for address in listeners.values())


def test_three_nodes_keep_three_copies_acknowledged_by_two(tmp_path: Path) -> None:
    props = server_properties(_config(tmp_path))
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9201,2@127.0.0.1:9202,3@127.0.0.1:9203"
    assert props["default.replication.factor"] == "3"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"


def test_one_node_cannot_ask_for_more_copies_than_it_has(tmp_path: Path) -> None:
    props = server_properties(_config(tmp_path, voters=VOTERS[:1], replication_factor=3))
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_sasl_ssl_without_certificates_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keystore"):
        server_properties(_config(tmp_path, keystore=None))


def test_a_container_binds_everywhere_and_advertises_its_host(tmp_path: Path) -> None:
    voters = tuple(parse_voters("1@kafka-1,2@kafka-2,3@kafka-3"))
    props = server_properties(_config(tmp_path, voters=voters, bind_host="0.0.0.0", local_tuning=False))
    assert _listeners(props, "listeners")["CLIENT"] == "0.0.0.0:9092"
    assert _listeners(props, "advertised.listeners")["CLIENT"] == "kafka-1:9092"
    assert "group.initial.rebalance.delay.ms" not in props  # no test-speed tuning in a deployment


@pytest.mark.parametrize(
    ("text", "reason"),
    [("1@kafka-1,1@kafka-2", "appears twice"), ("kafka-1", "expected"), ("x@kafka-1", "expected")],
)
def test_bad_voters_are_named(text: str, reason: str) -> None:
    with pytest.raises(BrokerError, match=reason):
        parse_voters(text)


def test_topics_acknowledge_writes_on_two_of_three_copies() -> None:
    assert [default_replication(n) for n in (1, 2, 3, 5)] == [1, 2, 3, 3]
    assert topic_config("lintas.hub.accepted", 3)["min.insync.replicas"] == "2"
    assert topic_config("lintas.hub.accepted", 1)["min.insync.replicas"] == "1"
    assert min_insync(2) == 1


# -- certificates ------------------------------------------------------------------------------


def test_node_certificates_are_signed_by_the_ca_for_their_hosts(tmp_path: Path) -> None:
    ca = CertificateAuthority.ensure(tmp_path / "tls")
    out = ca.issue(tmp_path / "node.pem", "lintas-broker-2", ["127.0.0.1", "kafka-2"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.key_file.stat().st_mode) == 0o600
    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM store reads it
    leaf, authority = x509.load_pem_x509_certificates(pem)
    assert authority == x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    leaf.verify_directly_issued_by(authority)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "lintas-broker-2"
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kafka-2"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)


def test_the_ca_is_made_once(tmp_path: Path) -> None:
    first = CertificateAuthority.ensure(tmp_path).cert_file.read_bytes()
    assert CertificateAuthority.ensure(tmp_path).cert_file.read_bytes() == first


def test_a_client_context_checks_the_certificate_and_the_host(tmp_path: Path) -> None:
    ca = CertificateAuthority.ensure(tmp_path)
    context = client_context(ca.cert_file)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cafile == str(ca.cert_file)


# -- passwords ---------------------------------------------------------------------------------


def test_passwords_are_files_only_their_owner_reads(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "secrets")
    password = store.ensure("router")
    assert store.ensure("router") == password  # made once
    assert len(password) >= 40
    assert store.users() == ["router"]
    assert stat.S_IMODE(store.file("router").stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert password not in repr(store)
    assert store.remove("router") is True
    assert store.get("router") is None
    with pytest.raises(BrokerError, match="no password"):
        store.require("router")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", "x" * 65])
def test_principal_names_cannot_leave_the_store(tmp_path: Path, name: str) -> None:
    with pytest.raises(BrokerError, match="principal name"):
        CredentialStore(tmp_path).put(name, "secret")


def test_format_arguments_create_each_principal_once_and_errors_hide_them(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    args = scram_format_args(store, ["operator", "router", "operator"])
    assert args[::2] == ["--add-scram", "--add-scram"]
    assert args[1] == f"SCRAM-SHA-512=[name=operator,password={store.require('operator')}]"
    leaked = f"Error: bad entry {args[3]}"
    assert store.require("router") not in _redact(leaked, store)


def test_deployment_secrets_are_made_once(tmp_path: Path) -> None:
    written = write_secrets(tmp_path, 3, "kafka-{id}", ["router", "nrm-th"])
    names = sorted(path.name for path in written)
    assert names == [
        "cluster.id",
        "node-1.pem",
        "node-2.pem",
        "node-3.pem",
        "nrm-th.password",
        "operator.password",
        "router.password",
    ]
    router = CredentialStore(tmp_path / "passwords").require("router")
    assert write_secrets(tmp_path, 3, "kafka-{id}", ["router", "nrm-th", "fp-th"]) == [
        tmp_path / "passwords" / "fp-th.password"
    ]
    assert CredentialStore(tmp_path / "passwords").require("router") == router
    leaf = x509.load_pem_x509_certificates((tmp_path / "tls" / "node-3.pem").read_bytes())[0]
    names_ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kafka-3" in names_ext.get_values_for_type(x509.DNSName)


# -- clients -----------------------------------------------------------------------------------


def test_client_options_carry_the_ca_to_both_client_libraries(tmp_path: Path) -> None:
    ca = CertificateAuthority.ensure(tmp_path)
    (tmp_path / "pw").write_text("s3cret\n")
    settings = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="router",
        sasl_password_file=tmp_path / "pw",
        ssl_cafile=ca.cert_file,
    )
    options = client_options(settings)
    assert isinstance(options["ssl_context"], TrustContext)
    assert options["sasl_plain_password"] == "s3cret"
    assert rdkafka_options(options) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "router",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca.cert_file),
    }
    settings.sasl_password = SecretStr("given")
    assert client_options(settings)["sasl_plain_password"] == "given"


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    settings = Settings(sasl_mechanism="SCRAM-SHA-512", sasl_password_file=tmp_path / "nope")
    with pytest.raises(BrokerError, match="sasl_password_file"):
        client_options(settings)


def test_unknown_security_protocols_are_refused() -> None:
    with pytest.raises(ValueError, match="security_protocol"):
        Settings(security_protocol="SASL-SSL")


# -- the cluster's plan ------------------------------------------------------------------------


def test_a_cluster_keeps_its_ports_and_refuses_another_size(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=3)
    first = cluster.bootstrap
    assert len(set(first.split(","))) == 3
    assert LocalCluster(tmp_path, nodes=3).bootstrap == first
    assert [member.node_id for member in cluster.members] == [1, 2, 3]
    assert {member.shared for member in cluster.members} == {tmp_path.resolve()}
    with pytest.raises(BrokerError, match="3 nodes, not 5"):
        _ = LocalCluster(tmp_path, nodes=5).bootstrap


def test_a_revoked_principal_is_remembered_until_it_gets_a_new_password(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.ensure("fp-mm")
    store.revoke("fp-mm")
    assert store.revoked("fp-mm")
    assert store.get("fp-mm") is None
    assert store.users() == []
    store.put("fp-mm", "new")
    assert not store.revoked("fp-mm")


def test_fields_named_like_secrets_are_never_logged(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from hub.logging import configure_logging

    configure_logging("json")
    try:
        structlog.get_logger("t").info("connected", sasl_password="hunter2", api_token="t0k", user="router")
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert "hunter2" not in err
    assert "t0k" not in err
    assert '"user": "router"' in err
