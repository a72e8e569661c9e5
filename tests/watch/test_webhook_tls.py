"""Webhook delivery over HTTPS to a real receiver on loopback: the connection goes to the address
the service checked, with the URL's name as SNI, in Host and in the certificate check.

The service trusts a throwaway authority made here (SSL_CERT_FILE, read when its TLS context is
made, so set before the app starts); a certificate for another name, or from an authority it
does not trust, must fail the attempt and leave the event unacknowledged."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from certcheck.config import Settings
from certcheck.verification.records import Status
from certcheck.watch.processor import WatchProcessor
from tests.conftest import load
from tests.watch.helpers import A, all_events, ndjson, processor, put, registry
from tests.watch.receiver import Receiver, serving
from tests.watch.webhook_helpers import change, register, status, until

_LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class Authority:
    """A certificate authority of the test's own, issuing server certificates for any name."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def make(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = _usage(digital_signature=False, key_cert_sign=True, crl_sign=True)
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, certificate)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def server_context(self, dns_name: str, directory: Path) -> ssl.SSLContext:
        """A TLS server context presenting a certificate for `dns_name` issued by this one."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
        issuer_key = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        leaf = (
            _builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_key), False
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = directory / f"{dns_name}-by-{self.name}.pem"
        chain.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + leaf.public_bytes(serialization.Encoding.PEM)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # clocks of CI runners drift
        .not_valid_after(now + _LIFETIME)
    )


def _usage(
    *, digital_signature: bool, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture
def trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Authority:
    """The one authority the service trusts, set before the app (and its delivery worker)
    starts: ssl.create_default_context() reads SSL_CERT_FILE when the worker is made."""
    authority = Authority.make("trusted")
    bundle = tmp_path / "trusted-ca.pem"
    bundle.write_bytes(authority.pem())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


@pytest.fixture
def settings(database_url: str, trusted: Authority) -> Settings:
    return Settings(
        database_url=database_url,
        max_registry_age=3600,
        watch_processor=False,  # the tests record events themselves (`change`)
        webhook_allow_private=True,  # the receiver is on loopback
        webhook_backoff_base=0.05,
        webhook_poll_interval=0.05,
    )


@pytest.fixture
async def watcher(
    client: httpx.AsyncClient, engine: AsyncEngine, shop: dict[str, str]
) -> WatchProcessor:
    """One listing of the shop's on A, decided allow; a processor to record events."""
    await load(engine, registry())
    await client.get("/readyz")
    await put(client, shop, ndjson([{"listing_id": "l1", "cert_no": A}]))
    return await processor(engine)


@pytest.fixture
def receiver(trusted: Authority, tmp_path: Path) -> Iterator[Receiver]:
    with serving(trusted.server_context("localhost", tmp_path)) as running:
        yield running


class TestHttps:
    async def test_an_event_is_delivered_signed_with_the_urls_name_in_sni_and_host(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        receiver: Receiver,
    ) -> None:
        assert receiver.url() == f"https://localhost:{receiver.port}/hook"
        secret = await register(client, shop, receiver.url())
        await change(engine, watcher, registry(status=Status.REVOKED))
        (event,) = await all_events(client, shop)
        await until(lambda: receiver.acknowledged() == [event["event_id"]], what="the event")
        (got,) = receiver.got()
        assert got.json() == event
        assert got.headers["host"] == f"localhost:{receiver.port}"
        signed = f"{got.event_id}.{got.headers['webhook-timestamp']}.".encode() + got.body
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert got.headers["webhook-signature"] == f"v1,{digest}"
        await settled(client, shop)
        await asyncio.sleep(0.3)  # time for a second sending, if one were coming
        assert len(receiver.got()) == 1
        assert receiver.server_names == ["localhost"]  # one connection, the URL's name as SNI
        assert receiver.handshake_errors == []


class TestRefusedCertificates:
    @pytest.mark.parametrize(
        ("issuer", "name"),
        [
            pytest.param("trusted", "other.example", id="for-another-name"),
            pytest.param("unknown", "localhost", id="from-an-untrusted-authority"),
        ],
    )
    async def test_the_attempt_fails_and_nothing_is_acknowledged(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine,
        shop: dict[str, str],
        watcher: WatchProcessor,
        trusted: Authority,
        tmp_path: Path,
        issuer: str,
        name: str,
    ) -> None:
        authority = trusted if issuer == "trusted" else Authority.make(issuer)
        unreachable = _deliveries("unreachable")
        with serving(authority.server_context(name, tmp_path)) as receiver:
            await register(client, shop, receiver.url())
            await change(engine, watcher, registry(status=Status.REVOKED))
            start = time.monotonic()
            while (state := await status(client, shop))["failing_since"] is None:
                assert time.monotonic() - start < 10, state
                await asyncio.sleep(0.05)
            await until(lambda: bool(receiver.handshake_errors), what="a refused handshake")
        assert (state["pending"], state["dead_lettered"]) == (1, 0)
        assert receiver.received == []  # no request was sent, so nothing acknowledged
        # The service asked for the URL's name and walked out of the handshake on seeing the
        # certificate (the receiver sees an EOF: the client's alert is not flushed before it
        # closes); the attempt counts as unreachable. The same receiver with a good
        # certificate is acknowledged (TestHttps), so the certificate is what failed here.
        assert receiver.server_names
        assert set(receiver.server_names) == {"localhost"}
        assert _deliveries("unreachable") > unreachable


async def settled(client: httpx.AsyncClient, shop: dict[str, str]) -> None:
    """Wait until the acknowledgement is recorded: nothing pending, nothing failing."""
    start = time.monotonic()
    while (state := await status(client, shop))["pending"]:
        assert time.monotonic() - start < 5, state
        await asyncio.sleep(0.02)
    assert (state["failing_since"], state["dead_lettered"]) == (None, 0)


def _deliveries(outcome: str) -> float:
    value = REGISTRY.get_sample_value("certcheck_webhook_deliveries_total", {"outcome": outcome})
    return value or 0.0
