"""A real RFC 3161 Time-Stamping Authority for tests: OpenSSL's `openssl ts -reply` with a
throw-away CA made for the test run, behind a small HTTP server on 127.0.0.1.

`mode` switches what it does: "ok" answers with a token; "down" answers 503 (a TSA that is
unavailable); "rogue" signs with a TSA certificate from another CA (a forger's token that
is genuine RFC 3161, just not from the authority we trust)."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import QuietHandler, serve_on_loopback

TSA_SECTION = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


def make_authority(directory: Path, name: str, key: tuple[str, ...]) -> Path:
    """A CA and a TSA certificate it issued (extendedKeyUsage: critical, timeStamping)."""
    directory.mkdir(parents=True)
    openssl(
        "req", "-x509", "-newkey", *key, "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", f"/O=Test/CN={name} Root CA", "-days", "30",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "req", "-newkey", *key, "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", f"/O=Test/CN={name} TSA",
        cwd=directory,
    )  # fmt: skip
    (directory / "ext.cnf").write_text(
        "extendedKeyUsage=critical,timeStamping\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
    )
    openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.crt", "-days", "30", "-extfile", "ext.cnf",
        cwd=directory,
    )  # fmt: skip
    (directory / "serial").write_text("01\n")
    (directory / "tsa.cnf").write_text(TSA_SECTION.format(dir=directory))
    return directory


@dataclass
class LocalTSA:
    url: str = ""
    directory: Path = Path()
    mode: str = "ok"
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ca_file(self) -> Path:
        return self.directory / "trusted" / "ca.crt"

    def reply(self, query: bytes) -> bytes:
        authority = self.directory / ("rogue" if self.mode == "rogue" else "trusted")
        with self.lock, tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / "q.tsq").write_bytes(query)
            openssl(
                "ts", "-reply", "-config", "tsa.cnf", "-queryfile", f"{scratch}/q.tsq",
                "-out", f"{scratch}/r.tsr",
                cwd=authority,
            )  # fmt: skip
            return (Path(scratch) / "r.tsr").read_bytes()


def serve_tsa(directory: Path) -> Iterator[LocalTSA]:
    state = LocalTSA(directory=directory)
    make_authority(directory / "trusted", "Trusted", ("rsa:2048",))
    make_authority(directory / "rogue", "Rogue", ("ec", "-pkeyopt", "ec_paramgen_curve:P-256"))

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests += 1
            if state.mode == "down" or self.headers.get("Content-Type") != (
                "application/timestamp-query"
            ):
                self.send(503)
            else:
                self.send(200, state.reply(query), "application/timestamp-reply")

    for base in serve_on_loopback(Handler):
        state.url = f"{base}/tsa"
        yield state
