"""The alertmanager sink's TLS settings against a real HTTPS receiver with its own CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from detector.sinks.delivery import DeliveryError
from tests.sinks.helpers import make_sink
from tests.sinks.receiver import Receiver


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alertmanager.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def https_receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Receiver(ok_status=200, scheme="https")
    await server.start(tls=context)
    yield server, cert
    await server.stop()


async def _send(settings: dict[str, Any], records: list[dict[str, Any]]) -> None:
    sink = make_sink("alertmanager", settings)
    await sink.open()
    try:
        await sink.write(records)
    finally:
        await sink.close()


async def test_the_configured_ca_is_trusted(
    https_receiver: tuple[Receiver, Path], incident_records: list[dict[str, Any]]
) -> None:
    receiver, cert = https_receiver
    await _send({"url": receiver.url, "tls_ca_file": str(cert)}, incident_records)
    assert receiver.accepted()


async def test_an_unknown_ca_is_refused_unless_verification_is_off(
    https_receiver: tuple[Receiver, Path], incident_records: list[dict[str, Any]]
) -> None:
    receiver, _ = https_receiver
    with pytest.raises(DeliveryError):
        await _send({"url": receiver.url, "max_attempts": 2}, incident_records)
    assert receiver.requests == []
    await _send({"url": receiver.url, "tls_insecure_skip_verify": True}, incident_records)
    assert receiver.accepted()
