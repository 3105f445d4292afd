"""RFC 3161 trusted timestamps: asking a Time-Stamping Authority (TSA) to sign a digest
with the time, and checking what it signed.

A token is a CMS SignedData (RFC 5652) over a TSTInfo that names the digest (the message
imprint), the time (genTime), a serial number and the TSA's policy. Checking one, as
anyone can with `openssl ts -verify`, means: the imprint is our digest; the signed
attributes carry the SHA-256 (or whichever digest the signer chose) of the TSTInfo exactly
as it is encoded; the signature over those attributes verifies with the signer's
certificate; and that certificate, marked for time stamping, chains to a CA we trust and
was valid at genTime. ASN.1 is read with asn1crypto, signatures and certificates checked
with cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from monitor.store.records import iso

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"

_DER = Encoding.DER
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class TokenError(Exception):
    """A TSA's answer or a stored token that does not prove what it should; says why."""


@dataclass(frozen=True)
class TokenInfo:
    """What a checked token vouches for."""

    gen_time: str  # ISO 8601, UTC
    serial: str
    policy: str
    tsa: str  # the signer certificate's subject
    chained: bool  # the signer chains to a CA we were given (False: no CA to check against)


def make_request(digest: bytes) -> tuple[bytes, int]:
    """A TimeStampReq (DER) for a SHA-256 digest, asking for the TSA's certificate in the
    token, with a fresh nonce (returned, to check the answer against)."""
    nonce = secrets.randbits(63)
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": digest,
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return request.dump(), nonce


def token_from_reply(reply: bytes) -> bytes:
    """The TimeStampToken (DER) out of a TSA's TimeStampResp; TokenError if it refused."""
    try:
        response = tsp.TimeStampResp.load(reply)
        status = response["status"]["status"].native
    except (ValueError, TypeError) as err:
        raise TokenError(f"not a timestamp reply ({err})") from None
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native
        raise TokenError(f"the TSA refused: {status}" + (f" ({'; '.join(text)})" if text else ""))
    token = response["time_stamp_token"]
    if not token:
        raise TokenError("the TSA granted the request but sent no token")
    return bytes(token.dump())


def load_ca_file(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise TokenError(f"cannot read the TSA CA file {path}: {err.strerror}") from None
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TokenError(f"{path}: no PEM certificates in it") from None


def check_token(
    token: bytes,
    digest: bytes,
    trusted: list[x509.Certificate] | None = None,
    nonce: int | None = None,
) -> TokenInfo:
    """Check a TimeStampToken (DER) against the SHA-256 `digest` it should vouch for; with
    `trusted` CA certificates, the signer must chain to one of them. TokenError says what
    is wrong."""
    try:
        info = cms.ContentInfo.load(token)
        if info["content_type"].native != "signed_data":
            raise TokenError("not a CMS SignedData")
        signed = info["content"]
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TokenError("its content is not a TSTInfo")
        tst_bytes = bytes(encapsulated["content"].contents)
        tst = tsp.TSTInfo.load(tst_bytes)
        imprint = tst["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = bytes(imprint["hashed_message"].native)
        gen_time: datetime = tst["gen_time"].native
        serial = str(tst["serial_number"].native)
        policy = str(tst["policy"].native)
        token_nonce = tst["nonce"].native
        signer_infos = list(signed["signer_infos"])
        embedded = [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in signed["certificates"] or []
            if choice.name == "certificate"
        ]
    except TokenError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise TokenError(f"not a readable timestamp token ({err})") from None
    if algorithm != "sha256" or hashed != digest:
        raise TokenError("it vouches for another digest than this one")
    if nonce is not None and token_nonce != nonce:
        raise TokenError("its nonce is not the one asked for (a replayed answer)")
    if len(signer_infos) != 1:
        raise TokenError(f"{len(signer_infos)} signers; a timestamp token has one")
    signer_info = signer_infos[0]
    signer = _signer_certificate(signer_info, embedded)
    _check_signature(signer_info, signer, tst_bytes)
    _check_time_stamping_use(signer)
    gen_time = gen_time.astimezone(UTC)
    chained = False
    if trusted is not None:
        _check_chain(signer, embedded, trusted, gen_time)
        chained = True
    return TokenInfo(
        gen_time=iso(gen_time),
        serial=serial,
        policy=policy,
        tsa=signer.subject.rfc4514_string(),
        chained=chained,
    )


def token_summary(token: bytes) -> dict[str, str]:
    """genTime, serial and signer of a token, read without checking it (for display)."""
    try:
        signed = cms.ContentInfo.load(token)["content"]
        tst = tsp.TSTInfo.load(bytes(signed["encap_content_info"]["content"].contents))
        return {
            "gen_time": tst["gen_time"].native.astimezone(UTC).isoformat(),
            "serial": str(tst["serial_number"].native),
            "policy": str(tst["policy"].native),
        }
    except (ValueError, TypeError, KeyError):
        return {}


def _signer_certificate(
    signer_info: cms.SignerInfo, embedded: list[x509.Certificate]
) -> x509.Certificate:
    sid = signer_info["sid"]
    for certificate in embedded:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                certificate.serial_number == wanted["serial_number"].native
                and certificate.issuer.public_bytes() == wanted["issuer"].dump()
            ):
                return certificate
        else:
            try:
                key_id = certificate.extensions.get_extension_for_class(
                    x509.SubjectKeyIdentifier
                ).value.digest
            except x509.ExtensionNotFound:
                continue
            if key_id == sid.chosen.native:
                return certificate
    raise TokenError("the signer's certificate is not in the token")


def _check_signature(
    signer_info: cms.SignerInfo, signer: x509.Certificate, tst_bytes: bytes
) -> None:
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TokenError(f"unsupported digest algorithm {digest_name}")
    attributes = signer_info["signed_attrs"]
    if not attributes:
        raise TokenError("no signed attributes")
    found: dict[str, object] = {a["type"].native: a["values"][0].native for a in attributes}
    if found.get("content_type") != "tst_info":
        raise TokenError("its signed content type is not a TSTInfo")
    if found.get("message_digest") != hashlib.new(digest_name, tst_bytes).digest():
        raise TokenError("its signature covers another TSTInfo (the token was altered)")
    # The signature is over the attributes encoded as a SET, not with their [0] tag.
    signed_bytes = b"\x31" + attributes.dump()[1:]
    signature = bytes(signer_info["signature"].native)
    algorithm = signer_info["signature_algorithm"].signature_algo
    key = signer.public_key()
    chosen = _HASHES[digest_name]()
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pkcs1v15":
            key.verify(signature, signed_bytes, padding.PKCS1v15(), chosen)
        elif isinstance(key, rsa.RSAPublicKey) and algorithm == "rsassa_pss":
            key.verify(
                signature,
                signed_bytes,
                padding.PSS(mgf=padding.MGF1(chosen), salt_length=padding.PSS.AUTO),
                chosen,
            )
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm == "ecdsa":
            key.verify(signature, signed_bytes, ec.ECDSA(chosen))
        else:
            raise TokenError(f"unsupported signature algorithm {algorithm}")
    except InvalidSignature:
        raise TokenError("its signature does not verify (forged or altered)") from None


def _check_time_stamping_use(signer: x509.Certificate) -> None:
    try:
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise TokenError("the signer's certificate is not marked for time stamping") from None
    if ExtendedKeyUsageOID.TIME_STAMPING not in usage:
        raise TokenError("the signer's certificate is not marked for time stamping")


def _check_chain(
    signer: x509.Certificate,
    embedded: list[x509.Certificate],
    trusted: list[x509.Certificate],
    at: datetime,
) -> None:
    """The signer, through certificates in the token, to a trusted CA; each valid at `at`."""
    roots = {root.public_bytes(_DER): root for root in trusted}
    current = signer
    for _ in range(8):
        if not current.not_valid_before_utc <= at <= current.not_valid_after_utc:
            raise TokenError(
                f"certificate {current.subject.rfc4514_string()} was not valid at {at:%Y-%m-%d}"
            )
        if current.public_bytes(_DER) in roots:
            return
        issuer = _issuer_of(current, [*trusted, *embedded])
        if issuer is None:
            raise TokenError(
                f"the signer ({signer.subject.rfc4514_string()}) does not chain to the "
                "trusted TSA CA"
            )
        if issuer.public_bytes(_DER) in roots:
            if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
                raise TokenError(f"the CA certificate was not valid at {at:%Y-%m-%d}")
            return
        current = issuer
    raise TokenError("the certificate chain is too long")


def _issuer_of(
    certificate: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != certificate.issuer or candidate == certificate:
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


# --- checking the timestamps of an archive or of an export ---------------------------------


@dataclass
class TimestampReport:
    batches: int = 0
    versions: int = 0  # covered, and checked
    damage: list[str] = field(default_factory=list)
    tokens: dict[int, TokenInfo] = field(default_factory=dict)


def check_coverage(
    batches: Iterable[Mapping[str, Any]],
    covered: Iterable[Mapping[str, Any]],
    chains: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    trusted: list[x509.Certificate] | None,
    report: TimestampReport,
) -> None:
    """Check batches (`id`, `manifest` text, `digest`, `token` DER, `gen_time`) and the
    versions they cover (`watch`, `key`, `seq`, `chain`, `batch_id`, `head`), given each
    statement's versions (`seq`, `chain`, `prev_chain`) by (watch, key)."""
    manifests: dict[int, dict[str, Any]] = {}
    for batch in batches:
        report.batches += 1
        name = f"timestamp batch {batch['id']}"
        manifest = str(batch["manifest"]).encode()
        digest = hashlib.sha256(manifest).digest()
        if digest.hex() != batch["digest"]:
            report.damage.append(f"{name}: its manifest does not match its digest (altered)")
            continue
        try:
            info = check_token(bytes(batch["token"]), digest, trusted)
        except TokenError as err:
            report.damage.append(f"{name}: token rejected: {err}")
            continue
        if info.gen_time != batch["gen_time"]:
            report.damage.append(
                f"{name}: recorded as of {batch['gen_time']}, but its token says {info.gen_time}"
            )
            continue
        report.tokens[int(batch["id"])] = info
        manifests[int(batch["id"])] = json.loads(manifest)
    for row in covered:
        name = f"version {row['watch']} {row['key']} #{row['seq']}"
        heads = manifests.get(int(row["batch_id"]))
        if heads is None:
            report.damage.append(f"{name}: its timestamp batch {row['batch_id']} does not hold")
            continue
        if heads["statements"].get(f"{row['watch']} {row['key']}") != row["head"]:
            report.damage.append(
                f"{name}: batch {row['batch_id']} does not name the head it is covered by"
            )
            continue
        if not _leads_to(chains.get((row["watch"], row["key"]), []), row, row["head"]):
            report.damage.append(
                f"{name}: its chain does not lead to the head batch {row['batch_id']} "
                "timestamped (altered, or versions between removed)"
            )
            continue
        report.versions += 1


def _leads_to(versions: Sequence[Mapping[str, Any]], row: Mapping[str, Any], head: str) -> bool:
    """The version's chain value is the head, or later versions link from it to the head."""
    later = sorted((v for v in versions if v["seq"] >= row["seq"]), key=lambda v: v["seq"])
    if not later or later[0]["seq"] != row["seq"] or later[0]["chain"] != row["chain"]:
        return False
    previous = later[0]
    if previous["chain"] == head:
        return True
    for current in later[1:]:
        if current["seq"] != previous["seq"] + 1 or current["prev_chain"] != previous["chain"]:
            return False
        if current["chain"] == head:
            return True
        previous = current
    return False


# --- in exports -------------------------------------------------------------------------

# The `type` of an export's record of one timestamp batch (a JSON line, a WARC metadata
# record `urn:monitor:timestamp-batch:ID`).
BATCH_RECORD = "timestamp-batch"


def batch_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored batch as an export carries it: the token base64-encoded (DER inside)."""
    return {
        "type": BATCH_RECORD,
        "id": row["id"],
        "created_at": row["created_at"],
        "tsa_url": row["tsa_url"],
        "gen_time": row["gen_time"],
        "serial": row["serial"],
        "digest": row["digest"],
        "manifest": row["manifest"],
        "token": base64.b64encode(bytes(row["token"])).decode(),
    }


def check_export(
    versions: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    trusted: list[x509.Certificate] | None,
    report: TimestampReport,
) -> None:
    """The timestamps in an export: its batch records, and its versions' `timestamp`."""
    batches = []
    for record in records:
        try:
            der = base64.b64decode(record["token"], validate=True)
        except (ValueError, KeyError):
            report.damage.append(f"timestamp batch {record.get('id')}: its token is not base64")
            continue
        batches.append({**record, "token": der})
    chains: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    covered = []
    for facts in versions:
        chains.setdefault((facts["watch"], facts["key"]), []).append(facts)
        stamp = facts.get("timestamp")
        if stamp:
            covered.append({**facts, "batch_id": stamp["batch"], "head": stamp["head"]})
    check_coverage(batches, covered, chains, trusted, report)
