"""The trusted-timestamp worker: every `[archive] tsa_interval`, the versions archived since
the last batch are timestamped by the TSA at `tsa_url`, with one request for all of them
(store/timestamps.py says what the request commits to).

Archiving never waits for it: versions are committed first and timestamped afterwards, so
a TSA that is down, slow or answers nonsense only leaves versions waiting, and the next
round tries again. An answer is checked before it is kept (our digest, our nonce, a valid
signature, and with `tsa_ca_file` a signer that chains to that CA): a token that would not
stand up later is refused now, and its versions wait for a good one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import httpx
from cryptography import x509

from monitor import timestamps as tsp
from monitor.config import ArchiveConfig
from monitor.rounds import in_rounds
from monitor.store import Store, now_iso
from monitor.store import timestamps as stored
from monitor.store.records import PendingStampRow

logger = logging.getLogger(__name__)


@dataclass
class StampResult:
    versions: int = 0  # covered by this round's batch
    waiting: int = 0  # left waiting (the TSA failed)
    error: str | None = None


class Stamper:
    def __init__(self, store: Store, config: ArchiveConfig) -> None:
        if not config.tsa_url:
            raise ValueError("no [archive] tsa_url")
        self.store = store
        self.config = config
        self.url = config.tsa_url
        self._failing = False

    def _trusted(self) -> list[x509.Certificate] | None:
        ca_file = self.config.tsa_ca_file
        return tsp.load_ca_file(ca_file) if ca_file else None

    async def stamp_once(self) -> StampResult:
        """Timestamp what is waiting, in batches of up to BATCH_LIMIT versions; stops at
        the first failure (logged once per outage), leaving the rest waiting."""
        result = StampResult()
        while True:
            rows = self.store.timestamps.pending_versions()
            if not rows:
                break
            try:
                await self._stamp(rows)
            except (tsp.TokenError, httpx.HTTPError, OSError) as err:
                result.waiting = len(rows)
                result.error = f"{self.url}: {err}"
                if not self._failing:
                    logger.warning(
                        "trusted timestamp failed, %d versions wait for the next try: %s",
                        len(rows),
                        result.error,
                    )
                self._failing = True
                break
            result.versions += len(rows)
            if self._failing:
                logger.info("trusted timestamps work again (%s)", self.url)
            self._failing = False
            if len(rows) < stored.BATCH_LIMIT:
                break
        return result

    async def _stamp(self, rows: list[PendingStampRow]) -> None:
        created = now_iso()
        manifest, heads = stored.manifest_for(rows, created)
        encoded = manifest.encode()
        digest = hashlib.sha256(encoded).digest()
        query, nonce = tsp.make_request(digest)
        async with httpx.AsyncClient(timeout=self.config.tsa_timeout) as client:
            answer = await client.post(
                self.url, content=query, headers={"Content-Type": tsp.QUERY_TYPE}
            )
        if answer.status_code != 200:
            raise tsp.TokenError(f"HTTP {answer.status_code}")
        token = tsp.token_from_reply(answer.content)
        info = tsp.check_token(token, digest, self._trusted(), nonce)
        batch = self.store.timestamps.record_batch(
            encoded, self.url, token, info.gen_time, info.serial, heads, created
        )
        logger.info(
            "timestamped %d versions (batch %d, %s, genTime %s)",
            len(rows),
            batch,
            info.tsa,
            info.gen_time,
        )

    async def run(self) -> None:
        """The daemon's loop: a round every `tsa_interval` until cancelled."""
        await in_rounds(
            self.stamp_once, lambda: self.config.tsa_interval, logger, "trusted timestamping"
        )


def verify_timestamps(
    store: Store, trusted: list[x509.Certificate] | None
) -> tuple[tsp.TimestampReport, int]:
    """Check every batch's token and every covered version's way to its batch's head
    (`monitor verify --timestamps`); also returns how many versions are still waiting."""
    report = tsp.TimestampReport()
    covered = list(store.timestamps.coverage())
    names = {row["document_id"]: (row["watch"], row["key"]) for row in covered}
    chains = {names[doc]: rows for doc, rows in store.timestamps.chains_of(names).items()}
    tsp.check_coverage(store.timestamps.batches(), covered, chains, trusted, report)
    return report, store.timestamps.waiting_count()
