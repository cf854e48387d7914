"""A throwaway certificate authority and server certificate, so the management endpoint can speak TLS.

Azure SDK token credentials refuse plain HTTP, so the emulated Azure Resource Manager endpoint is
served over HTTPS. At startup the emulator creates, in its state directory, a private CA
(``management-ca.pem``, key ``management-ca-key.pem``) and a server certificate it signed
(``management-cert.pem``, key ``management-key.pem``) valid for ``localhost``, ``127.0.0.1``, ``::1``
and the listening host. Clients trust the CA file: ``connection_verify=<ca path>`` on an Azure SDK
client, or ``REQUESTS_CA_BUNDLE`` for azure-core's default (requests) transport.

The files are reused while they are valid for the wanted hosts, and the CA while it is valid at all,
so a client configured once keeps working across restarts with the same state directory (pass
``--state-dir``). Nothing here is a secret worth protecting beyond the local machine; key files are
still written with mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "management-ca.pem"
CERT_FILE = "management-cert.pem"
KEY_FILE = "management-key.pem"
CA_KEY_FILE = "management-ca-key.pem"
_LIFETIME = timedelta(days=365)
_CA_LIFETIME = timedelta(days=3650)
_RENEW_BEFORE = timedelta(days=7)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the server certificate, its key and the CA certificate clients should trust."""

    cert_path: Path
    key_path: Path
    ca_path: Path


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _wanted_names(hosts: tuple[str, ...]) -> set[x509.GeneralName]:
    return {
        _general_name(host) for host in (*DEFAULT_HOSTS, *hosts) if host and host not in ("0.0.0.0", "::")
    }


def _still_valid(files: TlsFiles, names: set[x509.GeneralName]) -> bool:
    if not (files.cert_path.is_file() and files.key_path.is_file() and files.ca_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
        present = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (ValueError, x509.ExtensionNotFound):
        return False
    fresh = cert.not_valid_after_utc - datetime.now(timezone.utc) > _RENEW_BEFORE
    return fresh and names <= present


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _load_ca(
    files: TlsFiles, ca_key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The existing CA and its key, when both are there and the CA is not about to expire."""
    if not (files.ca_path.is_file() and ca_key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
        key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.not_valid_after_utc - datetime.now(timezone.utc) <= _RENEW_BEFORE:
        return None
    return cert, key


def _new_ca(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Azure Batch emulator local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _CA_LIFETIME)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key


def ensure_tls_files(directory: str | os.PathLike[str], hosts: tuple[str, ...] = ()) -> TlsFiles:
    """Create (or reuse) the CA and the server certificate for ``hosts`` in ``directory``.

    The CA is kept as long as it is valid, so clients that trust it keep working when the server
    certificate is reissued for other hosts.
    """
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(base / CERT_FILE, base / KEY_FILE, base / CA_FILE)
    ca_key_path = base / CA_KEY_FILE
    names = _wanted_names(hosts)
    if _still_valid(files, names) and ca_key_path.is_file():
        return files

    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    pem = serialization.Encoding.PEM
    loaded = _load_ca(files, ca_key_path)
    if loaded is None:
        ca_cert, ca_key = _new_ca(now)
        _write(
            ca_key_path,
            ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            0o600,
        )
        _write(files.ca_path, ca_cert.public_bytes(pem))
    else:
        ca_cert, ca_key = loaded
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sorted(names, key=str)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    _write(
        files.key_path,
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        0o600,
    )
    _write(files.cert_path, server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return files
