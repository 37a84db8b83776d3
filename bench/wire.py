"""Bytes on the wire for one heartbeat on a new TLS connection, as a runner behind an HTTPS load balancer sends it.

A runner beats every 15 minutes and the load balancer closes an idle connection after 60 s, so every
heartbeat opens a new connection and makes a full TLS handshake. Here a real boto3 client sends one
heartbeat over a fresh connection to a TLS front (TLS 1.2-1.3, as the stack's listener policy allows)
that serves a certificate chain shaped like an ACM one (RSA-2048 leaf with SANs, an intermediate and a
cross-signed root), and forwards the request to `make serve`'s endpoint. Two counts:

- on the wire: every byte of the TCP streams both ways (handshake, TLS records, alerts), without the
  TCP/IP headers, which no count here can see;
- HTTP: the request and the response as plain HTTP (what a load balancer's processed bytes count).
"""

from __future__ import annotations

import contextlib
import datetime
import queue
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEYS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
# What a public ACM certificate's leaf carries besides its names: two signed certificate timestamps
# (an extension of about 240 bytes), OCSP and CA issuer URLs, a CRL distribution point and a policy.
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                      "Amazon"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def _certificate(
    subject: str, key: rsa.RSAPrivateKey, issuer: tuple[str, rsa.RSAPrivateKey] | None, leaf: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(_name(issuer_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=395))
        .add_extension(x509.BasicConstraints(ca=not leaf, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.r2m02.amazontrust.com/r2m02.crl")], None, None, None)]),
            critical=False)
        .add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier("http://ocsp.r2m02.amazontrust.com")),
            x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier("http://crt.r2m02.amazontrust.com/r2m02.cer"))]),
            critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"),
                                                                        None)]), critical=False)
    )  # fmt: skip
    if leaf:
        builder = (
            builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("heartbeat.example.internal")]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, bytes(242)), critical=False)
        )
    return builder.sign(issuer_key, hashes.SHA256())


def certificate_chain(work: Path) -> tuple[Path, Path, Path]:
    """A leaf, an intermediate and a cross-signed root, all RSA-2048: (chain file, key file, trusted root file)."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4)]
    anchor = _certificate("Starfield Services Root Certificate Authority - G2", keys[0], None, leaf=False)
    root = _certificate("Amazon Root CA 1", keys[1], ("Starfield Services Root Certificate Authority - G2", keys[0]),
                        leaf=False)  # fmt: skip
    intermediate = _certificate("Amazon RSA 2048 M02", keys[2], ("Amazon Root CA 1", keys[1]), leaf=False)
    leaf = _certificate("heartbeat.example.internal", keys[3], ("Amazon RSA 2048 M02", keys[2]), leaf=True)
    chain, key, trusted = work / "chain.pem", work / "key.pem", work / "anchor.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, intermediate, root)))
    key.write_bytes(keys[3].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    trusted.write_bytes(anchor.public_bytes(serialization.Encoding.PEM))
    return chain, key, trusted


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = {"wire_up": 0, "wire_down": 0, "http_up": 0, "http_down": 0}

    def add(self, name: str, n: int) -> None:
        with self.lock:
            self.values[name] += n


def _pump(
    source: socket.socket | ssl.SSLSocket, sink: socket.socket | ssl.SSLSocket, counts: _Counts, name: str
) -> None:
    """Copy one direction until it ends, counting the bytes; then end the other side's writing."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            counts.add(name, len(data))
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _both_ways(a: socket.socket, b: socket.socket, counts: _Counts, up: str, down: str) -> None:
    threads = [threading.Thread(target=_pump, args=(a, b, counts, up)),
               threading.Thread(target=_pump, args=(b, a, counts, down))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a.close()
    b.close()


@contextlib.contextmanager
def _listener(serve: Any) -> Iterator[int]:
    """A loopback listener handing each connection to serve(connection) on a thread; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = server.accept()
                connection.settimeout(None)
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def heartbeat_bytes(endpoint_url: str, heartbeats: int = 3) -> dict[str, Any]:
    """Bytes each way for one heartbeat on a new TLS connection, the same for each of `heartbeats` runs."""
    host, _, port = endpoint_url.removeprefix("http://").partition(":")
    counts = _Counts()
    closed: queue.Queue[str] = queue.Queue()  # each layer's connection, once both its directions have ended
    versions: set[str] = set()  # the TLS versions negotiated
    with tempfile.TemporaryDirectory() as work:
        chain, key, trusted = certificate_chain(Path(work))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain, key)

        def terminate_tls(connection: socket.socket) -> None:
            with contextlib.suppress(ssl.SSLError, OSError):
                tls = context.wrap_socket(connection, server_side=True)
                versions.add(str(tls.version()))
                backend = socket.create_connection((host, int(port)))
                _both_ways(tls, backend, counts, "http_up", "http_down")
            closed.put("http")

        with _listener(terminate_tls) as tls_port:

            def count_wire(connection: socket.socket) -> None:
                _both_ways(
                    connection, socket.create_connection(("127.0.0.1", tls_port)), counts, "wire_up", "wire_down"
                )
                closed.put("wire")

            with _listener(count_wire) as wire_port:
                runs = []
                for i in range(heartbeats):
                    before = dict(counts.values)
                    client = boto3.client(
                        "datapipeline", endpoint_url=f"https://localhost:{wire_port}", verify=str(trusted),
                        config=Config(retries={"total_max_attempts": 1}), **KEYS,
                    )  # fmt: skip
                    client.report_task_runner_heartbeat(
                        taskrunnerId=f"i-0a1b2c3d4e5f6789{i}-taskrunner", workerGroup="etl-workers-prod",
                        hostname="ip-10-20-31-42.eu-west-1.compute.internal",
                    )  # fmt: skip
                    client.close()  # the load balancer's idle timeout would close it before the next beat
                    assert {closed.get(timeout=30), closed.get(timeout=30)} == {"wire", "http"}  # noqa: S101
                    run = {k: counts.values[k] - before[k] for k in counts.values}
                    runs.append({**run, "wire": run["wire_up"] + run["wire_down"],
                                 "http": run["http_up"] + run["http_down"]})  # fmt: skip
        chain_der = [
            c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(chain.read_bytes())
        ]
    return {
        "runs": runs,
        "per_heartbeat": max(runs, key=lambda r: r["wire"]),
        "certificate_chain_bytes": sum(len(der) for der in chain_der),
        "tls_versions": sorted(versions),
        "openssl": ssl.OPENSSL_VERSION,
    }
