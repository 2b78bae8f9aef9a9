"""A local certificate authority and the certificates of the broker nodes (``cryptography``).

Every deployment generates its own: nothing here is committed or shared. Node certificates serve
both ends of TLS (server and client authentication), because the nodes identify each other by
certificate on the controller and inter-broker listeners; the certificate's common name is the
node's Kafka principal (``User:<cn>``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "TrustContext", "client_context", "node_principal"]

_CA_DAYS = 3650
_NODE_DAYS = 825  # the longest lifetime browsers and most TLS stacks still accept for a leaf


def node_principal(node_id: int) -> str:
    """The common name, and so the Kafka principal, of node ``node_id``'s certificate."""
    return f"lintas-broker-{node_id}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: a key must never be readable by others, even briefly.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8: the form Kafka's PEM key store reads.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class CertificateAuthority:
    """The CA in ``directory``: ``ca.pem`` (the certificate clients trust) and ``ca.key`` (0600)."""

    directory: Path

    @property
    def cert_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "ca.key"

    @classmethod
    def ensure(cls, directory: Path, name: str = "Lintas local CA") -> CertificateAuthority:
        """The CA already in ``directory``, or a new one."""
        ca = cls(Path(directory))
        if ca.cert_file.is_file() and ca.key_file.is_file():
            return ca
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(ca.key_file, _key_pem(key))
        ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    def issue(self, out: Path, common_name: str, hosts: Iterable[str]) -> Path:
        """Write ``out`` (0600): a new key and its certificate for ``hosts`` (DNS names or IP
        addresses), followed by the CA's, as Kafka's PEM key store reads them. Returns ``out``."""
        ca_key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key_file}: not an EC key")
        ca_cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys(hosts):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_NODE_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = (
            _key_pem(key)
            + cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        _write_private(out, pem)
        return out


class TrustContext(ssl.SSLContext):
    """A client TLS context that remembers its CA file, so that librdkafka clients (which take a
    path, not a context) are given the same trust as aiokafka ones."""

    cafile: str


def client_context(cafile: Path | str) -> TrustContext:
    """Verify the server's certificate and host name against ``cafile`` only."""
    context = TrustContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(cafile))
    context.cafile = str(cafile)
    return context
