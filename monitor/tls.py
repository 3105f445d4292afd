"""TLS provenance of a response: what its connection said about itself.

Each engine hands the Fetcher a `TlsInfo` with every answer (`FetchResult.tls`): the
server's certificate chain exactly as presented (DER, leaf first), the negotiated protocol
and cipher, and, in words (`how`), where each came from, since the engines differ:

* libcurl (the default engine) reports the chain it was presented (CURLOPT_CERTINFO) but
  not the protocol version; the protocol and cipher come from one handshake of our own
  (Python's `ssl`) with the same address and server name, made once per chain and host,
  and kept only when that server presents the same leaf certificate.
* httpx and aiohttp run on Python's `ssl`: protocol and cipher are the connection's own;
  the chain as presented comes from OpenSSL through `get_unverified_chain` (public from
  Python 3.13; the same method, private, since 3.10), else the leaf alone.
* The browser engine gives what Playwright's `securityDetails` has: protocol, the leaf's
  subject and issuer names and validity, no certificate bytes.

A plain http:// answer records `NO_TLS`. Nothing here parses a certificate: the store does
that once per distinct chain (monitor/store/provenance.py). A pooled connection's answer
reuses the `TlsInfo` its handshake produced, so an unchanged check over a kept-alive
connection costs a lookup.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary


@dataclass(frozen=True)
class TlsInfo:
    """What one connection said about itself; `encrypted` False for plain HTTP."""

    encrypted: bool = True
    protocol: str | None = None  # "TLSv1.3"
    cipher: str | None = None  # "TLS_AES_256_GCM_SHA384"
    chain: tuple[bytes, ...] = ()  # DER certificates as the server presented them, leaf first
    complete: bool = True  # False: the leaf alone (all the engine could see)
    how: str = ""  # where each of the above came from, in words
    # The browser's own account of the leaf when it gives no certificate bytes.
    details: Mapping[str, Any] | None = field(default=None, compare=False)

    @cached_property
    def chain_sha256(self) -> str | None:
        """The chain's identity (`chain_digest`); None without one."""
        return chain_digest(self.chain) if self.chain else None

    def facts(self) -> dict[str, Any]:
        """The per-response part, JSON-ready (the chain itself is stored once, by hash)."""
        if not self.encrypted:
            return {"encrypted": False}
        facts: dict[str, Any] = {
            "encrypted": True,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "chain_complete": self.complete if self.chain else None,
            "how": self.how,
        }
        if self.details is not None:
            facts["details"] = dict(self.details)
        return facts


def chain_digest(chain: tuple[bytes, ...]) -> str:
    """A chain's identity: SHA-256 of its DER certificates concatenated in the order
    presented (DER delimits itself, so the concatenation is unambiguous)."""
    return hashlib.sha256(b"".join(chain)).hexdigest()


NO_TLS = TlsInfo(encrypted=False, how="plain HTTP: no TLS")


def leaf_sha256(chain: tuple[bytes, ...]) -> str | None:
    return hashlib.sha256(chain[0]).hexdigest() if chain else None


# --- Python's ssl (httpx, aiohttp, and the libcurl engine's protocol handshake) ----------


def chain_of(ssl_object: Any) -> tuple[tuple[bytes, ...], bool]:
    """The chain a connection's peer presented (DER, leaf first), and whether it is all of
    it: OpenSSL's unverified chain where Python exposes it, else the leaf alone."""
    inner = getattr(ssl_object, "_sslobj", None)
    method = getattr(ssl_object, "get_unverified_chain", None) or getattr(
        inner, "get_unverified_chain", None
    )
    if method is not None:
        with contextlib.suppress(Exception):
            certificates = method() or []
            chain = tuple(_der(cert) for cert in certificates)
            if chain:
                return chain, True
    leaf = ssl_object.getpeercert(binary_form=True)
    return ((leaf,) if leaf else ()), False


def _der(certificate: Any) -> bytes:
    if isinstance(certificate, bytes):
        return certificate
    return bytes(certificate.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]


class SslObjects:
    """`TlsInfo` per live connection of an engine on Python's ssl, made once per
    connection (weakly keyed: a closed connection's entry goes with it)."""

    def __init__(self, engine: str) -> None:
        self._known: WeakKeyDictionary[Any, TlsInfo] = WeakKeyDictionary()
        self._how = f"{engine} on Python's ssl: protocol, cipher and chain of the connection itself"

    def info(self, ssl_object: Any, url: str) -> TlsInfo:
        """The provenance of an answer to `url` over the connection of `ssl_object`."""
        if ssl_object is None:
            if urlsplit(url).scheme != "https":
                return NO_TLS
            return TlsInfo(how="the engine did not expose the connection's TLS state")
        known = self._known.get(ssl_object)
        if known is None:
            chain, complete = chain_of(ssl_object)
            cipher = ssl_object.cipher()
            how = self._how if complete else self._how + " (the leaf alone: no chain exposed)"
            known = TlsInfo(
                protocol=ssl_object.version(),
                cipher=cipher[0] if cipher else None,
                chain=chain,
                complete=complete,
                how=how,
            )
            self._known[ssl_object] = known
        return known


# --- libcurl -------------------------------------------------------------------------------


def chain_from_certinfo(certinfo: list[list[tuple[str, str]]]) -> tuple[bytes, ...]:
    """libcurl's CURLINFO_CERTINFO (one list of "name", "value" pairs per certificate, in
    the order presented; "Cert" is the certificate in PEM) as DER certificates."""
    chain = []
    for fields in certinfo:
        pem = next((value for name, value in fields if name == "Cert"), None)
        if pem is None:
            return ()
        body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
        chain.append(base64.b64decode(body))
    return tuple(chain)


CURL_HOW = "libcurl (CURLOPT_CERTINFO): the chain as presented on the connection"
_PROBE_HOW = (
    "; protocol and cipher: libcurl does not report them, so from one TLS handshake of "
    "our own (Python's ssl) with the same address and name, whose server presented the "
    "same leaf certificate"
)


async def protocol_handshake(
    address: str,
    port: int,
    server_name: str,
    context: ssl.SSLContext,
    timeout: float,
    chain: tuple[bytes, ...],
) -> tuple[str | None, str | None, str]:
    """The protocol and cipher a server at `address` negotiates with us, by one handshake
    of our own, and a note on it: kept only when the server presents the leaf of `chain`
    (a load balancer may put another server at the same address)."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=server_name
            )
        ssl_object = writer.get_extra_info("ssl_object")
        seen, _complete = chain_of(ssl_object)
        if leaf_sha256(seen) != leaf_sha256(chain):
            return None, None, "; protocol unknown: a handshake of our own met another leaf"
        cipher = ssl_object.cipher()
        return ssl_object.version(), cipher[0] if cipher else None, _PROBE_HOW
    except (OSError, TimeoutError, ssl.SSLError) as err:
        return None, None, f"; protocol unknown: our own handshake failed ({type(err).__name__})"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def browser_info(details: Mapping[str, Any] | None) -> TlsInfo:
    """Playwright's `response.security_details()` (None: the page was not fetched over
    TLS, or the browser did not say)."""
    if not details:
        return TlsInfo(how="headless Chromium gave no security details")
    return TlsInfo(
        protocol=details.get("protocol"),
        details={
            "subject": details.get("subjectName"),
            "issuer": details.get("issuer"),
            "not_before": _moment(details.get("validFrom")),
            "not_after": _moment(details.get("validTo")),
        },
        complete=False,
        how="headless Chromium (Playwright securityDetails): protocol and the leaf's names "
        "and validity; no certificate bytes, so no chain or fingerprint",
    )


def _moment(seconds: Any) -> str | None:
    """Playwright's validity bound (seconds since the epoch) as an ISO 8601 UTC time."""
    if not isinstance(seconds, int | float):
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
