"""The archive's TLS provenance: the certificate chain each stored response's server
presented, and the protocol negotiated (what the engines record is in monitor/tls.py).

A response row keeps its own facts (`response.tls`, JSON: protocol, cipher, how they were
learnt) and names its chain by hash (`response.tls_chain`); each distinct chain is stored
once (`tls_chain`), since one chain serves thousands of fetches. A chain is parsed, with
`cryptography`, only the first time it is stored: its hash is looked up first. The tables
are documented in schema.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from monitor.store.dialect import insert_ignore
from monitor.store.records import iso
from monitor.store.schema import tls_chain

if TYPE_CHECKING:
    from monitor.tls import TlsInfo

Row = dict[str, Any]


def response_columns(conn: Connection, tls: TlsInfo | None, at: str) -> Row:
    """A stored response's TLS columns, its chain stored first if it is new."""
    if tls is None:
        return {"tls": None, "tls_chain": None}
    digest = tls.chain_sha256
    if digest is not None:
        known = conn.execute(select(tls_chain.c.sha256).where(tls_chain.c.sha256 == digest))
        if known.first() is None:
            # Another daemon on the same PostgreSQL archive may store it at the same time.
            conn.execute(
                insert_ignore(conn, tls_chain),
                {
                    "sha256": digest,
                    "pem": "".join(pem(der) for der in tls.chain),
                    "certificates": json.dumps(certificates(tls.chain), ensure_ascii=False),
                    "first_seen": at,
                },
            )
    return {"tls": json.dumps(tls.facts(), ensure_ascii=False), "tls_chain": digest}


def pem(der: bytes) -> str:
    body = textwrap.fill(base64.b64encode(der).decode(), 64)
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def certificates(chain: tuple[bytes, ...]) -> list[Row]:
    """Each certificate's subject, issuer, serial (hex), validity and SHA-256 (of its DER).
    One that does not parse keeps its hash and says why; its bytes are stored all the same."""
    from cryptography import x509  # only when a new chain is stored

    described: list[Row] = []
    for der in chain:
        facts: Row = {"sha256": hashlib.sha256(der).hexdigest()}
        try:
            certificate = x509.load_der_x509_certificate(der)
            facts |= {
                "subject": certificate.subject.rfc4514_string(),
                "issuer": certificate.issuer.rfc4514_string(),
                "serial": format(certificate.serial_number, "x"),
                "not_before": iso(certificate.not_valid_before_utc),
                "not_after": iso(certificate.not_valid_after_utc),
            }
        except ValueError as err:
            facts["error"] = f"not a certificate cryptography can read: {err}"
        described.append(facts)
    return described


def chain(store: Any, digest: str) -> Row | None:
    """A stored chain: its hash, PEM and certificates (each with its own PEM)."""
    with store._read() as conn:
        row = conn.execute(select(tls_chain).where(tls_chain.c.sha256 == digest)).mappings()
        found = row.first()
    if found is None:
        return None
    described = json.loads(found["certificates"])
    pems = _split_pem(found["pem"])
    for facts, one in zip(described, pems, strict=False):
        facts["pem"] = one
    return {"sha256": digest, "first_seen": found["first_seen"], "certificates": described}


def _split_pem(text: str) -> list[str]:
    end = "-----END CERTIFICATE-----\n"
    return [part + end for part in text.split(end) if part.strip()]


def response_tls(
    store: Any, record: Mapping[str, Any], chains: dict[str, Row | None] | None = None
) -> Row | None:
    """A stored response's TLS provenance, its chain resolved, JSON-ready: None when it
    was not recorded (a response stored before schema 9). `chains`: the chains read so
    far, by digest (a list of versions from one site presents the same chain each time)."""
    raw = record.get("tls")
    if raw is None:
        return None
    facts: Row = json.loads(raw) if isinstance(raw, str) else dict(raw)
    digest = record.get("tls_chain")
    complete = facts.pop("chain_complete", None)
    if not digest:
        facts["chain"] = None
    elif chains is None:
        facts["chain"] = chain(store, digest)
    else:
        if digest not in chains:
            chains[digest] = chain(store, digest)
        known = chains[digest]
        facts["chain"] = dict(known) if known is not None else None
    if facts["chain"] is not None:
        facts["chain"]["complete"] = complete  # False: the leaf alone, all the engine saw
    return facts
