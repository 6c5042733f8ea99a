"""A private CA and a server certificate for the embedded broker's TLS listener (cryptography).

Made once per data folder: the CA signs one certificate for 127.0.0.1 and localhost. The
files are PEM, as Kafka's PEM key store and every client of the pipeline read them; the
private keys are readable by their owner only.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts.embedded.private_files import write_private

__all__ = ["ServerTls", "make_server_tls"]

_VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class ServerTls:
    """Where the CA's certificate (for clients) and the server's key and chain (for the broker) are."""

    ca_file: Path
    server_pem: Path


def make_server_tls(folder: Path, common_name: str) -> ServerTls:
    """The CA and the server certificate in `folder`, made on first use and kept after."""
    tls = ServerTls(folder / "ca.pem", folder / "server.pem")
    if tls.ca_file.exists() and tls.server_pem.exists():
        return tls
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), ca_name, key.public_key(), now
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # The server's key (PKCS#8, unencrypted: Kafka's PEM store takes it so), then its chain.
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = server.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    write_private(tls.server_pem, private + chain)
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return tls


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not cert_sign,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
