"""Screenshots in the UI: a watch's screenshots as PNGs, copies with the changed regions
outlined, and the visual diff page showing two of them side by side.

Every image is served by us, from our origin, as `image/png` with `nosniff` (the app's
default) and a CSP that allows nothing: they are our own PNGs (Chromium's, or Pillow's
copies), never archived HTML. The pixel diffs run in the UI's worker (as text diffs do),
and the last few are kept, since a diff page and its two images ask for the same one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from monitor.config import WatchConfig
from monitor.extras import missing
from monitor.isolate import Work, WorkFailed
from monitor.store import Store
from monitor.store.records import VersionWithDocumentRow
from monitor.web.pages import Missing, Pages, Visit, page, version_url

# Served images: nothing in them may load or run anything, and only readers see them.
IMAGE_POLICY = "default-src 'none'; sandbox"
_IMAGE_HEADERS = {
    "Content-Security-Policy": IMAGE_POLICY,
    "Cache-Control": "private, max-age=3600",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Pixel diffs kept for the images of a diff page that was just shown.
_KEPT_DIFFS = 16
SIDES = ("before", "after")


def shot_url(watch_id: str, shot_id: int) -> str:
    return f"/watch/{quote(watch_id, safe='')}/screenshots/{shot_id}.png"


def outlined_url(watch_id: str, a: int, b: int, side: str) -> str:
    return f"/watch/{quote(watch_id, safe='')}/visual/{a}-{b}/{side}.png"


def visual_url(watch_id: str, a: int | None, b: int) -> str:
    where = f"/watch/{quote(watch_id, safe='')}/visual?b={b}"
    return where + (f"&a={a}" if a is not None else "")


def version_shots(
    store: Store, a: VersionWithDocumentRow | None, b: VersionWithDocumentRow
) -> dict[str, Any]:
    """The screenshots of two versions for the text diff page (empty when neither has one):
    with both, the visual diff's images and page."""
    shots = store.screenshots
    before = shots.of_version(a["id"]) if a is not None else None
    after = shots.of_version(b["id"])
    if after is None and before is None:
        return {}
    watch_id = b["watch_id"]
    found: dict[str, Any] = {"before": before, "after": after, "page": None, "same": False}
    if before is not None and after is not None and before["id"] != after["id"]:
        found["images"] = {
            side: outlined_url(watch_id, before["id"], after["id"], side) for side in SIDES
        }
        found["page"] = visual_url(watch_id, before["id"], after["id"])
    else:
        found["images"] = {
            side: shot_url(watch_id, shot["id"]) if shot is not None else None
            for side, shot in (("before", before), ("after", after))
        }
        found["same"] = before is not None and after is not None
    return found


def watch_shots(store: Store, watch_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """A watch's newest screenshot rows for its page: each with its image and, when it was
    compared with an earlier one, its visual diff; problems with their reason."""
    shown = []
    for row in store.screenshots.of_watch(watch_id, limit):
        entry = {**row, "image": None, "page": None}
        if row["sha256"]:
            entry["image"] = shot_url(watch_id, row["id"])
            if row["previous_id"] is not None:
                entry["page"] = visual_url(watch_id, row["previous_id"], row["id"])
        shown.append(entry)
    return shown


class VisualPages(Pages):
    def __init__(
        self,
        *args: Any,
        find_watch: Callable[[str], tuple[WatchConfig, bool]],
        work: Work,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.find_watch = find_watch
        self.work = work
        self._diffs: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def _shot(self, watch_id: str, shot_id: int) -> dict[str, Any]:
        row = self.store.screenshots.get(shot_id)
        if row is None or row["watch_id"] != watch_id or not row["sha256"]:
            raise Missing(f"no screenshot {shot_id} of watch {watch_id!r}")
        # Untyped from here: its `sha256` is known to be set, which `ScreenshotRow` cannot say.
        return cast("dict[str, Any]", row)

    async def _diff(self, before: dict[str, Any], after: dict[str, Any]) -> Any:
        """The pixel diff of two screenshots (monitor/visualdiff.py), in the UI's worker."""
        problem = missing("browser", "the visual diff")
        if problem:
            raise Missing(problem)
        from monitor.visualdiff import visual_diff

        key = (before["sha256"], after["sha256"])
        found = self._diffs.get(key)
        if found is None:
            old = self.store.read_blob(before["sha256"])
            new = self.store.read_blob(after["sha256"])
            found = await self.work.run(visual_diff, old, new)
            self._diffs[key] = found
            while len(self._diffs) > _KEPT_DIFFS:
                self._diffs.popitem(last=False)
        else:
            self._diffs.move_to_end(key)
        return found

    def _pair(self, request: Request, watch_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The screenshots `?b=ID[&a=ID]` names: a defaults to what b was compared with."""
        params = request.query_params
        try:
            b_id = int(params.get("b", ""))
            a_id = int(params["a"]) if params.get("a") else None
        except ValueError:
            raise Missing("screenshots are given by number") from None
        after = self._shot(watch_id, b_id)
        a_id = a_id if a_id is not None else after["previous_id"]
        if a_id is None:
            raise Missing("this screenshot is the watch's first: nothing to compare it with")
        return self._shot(watch_id, a_id), after

    @page()
    async def screenshot(self, request: Request, visit: Visit) -> Response:
        watch, _configured = self.find_watch(request.path_params["watch"])
        row = self._shot(watch.id, int(request.path_params["shot"]))
        return _png(self.store.read_blob(row["sha256"]), row["sha256"])

    @page()
    async def outlined(self, request: Request, visit: Visit) -> Response:
        """A screenshot with the regions that differ from the other one outlined."""
        watch, _configured = self.find_watch(request.path_params["watch"])
        side = request.path_params["side"]
        if side not in SIDES:
            raise Missing(f"no side {side!r} (before or after)")
        before = self._shot(watch.id, int(request.path_params["a"]))
        after = self._shot(watch.id, int(request.path_params["b"]))
        from monitor.visualdiff import outlined as draw_outlines

        try:
            diff = await self._diff(before, after)
            shown = before if side == "before" else after
            data = await self.work.run(
                draw_outlines, self.store.read_blob(shown["sha256"]), diff.boxes
            )
        except WorkFailed as err:
            raise Missing(f"these screenshots could not be compared: {err.reason}") from None
        return _png(data, None)

    @page()
    async def visual(self, request: Request, visit: Visit) -> Response:
        """Two screenshots of a watch side by side, the changed regions outlined."""
        watch, _configured = self.find_watch(request.path_params["watch"])
        before, after = self._pair(request, watch.id)
        try:
            diff = await self._diff(before, after)
            failed = None
        except WorkFailed as err:
            diff, failed = None, err.reason
        return self.render(
            visit,
            "visual.html.j2",
            watch=watch,
            before=before,
            after=after,
            diff=diff,
            failed=failed,
            images={
                side: outlined_url(watch.id, before["id"], after["id"], side) for side in SIDES
            },
            plain={
                "before": shot_url(watch.id, before["id"]),
                "after": shot_url(watch.id, after["id"]),
            },
            versions={
                "before": self._versions(before["id"]),
                "after": self._versions(after["id"]),
            },
        )

    def _versions(self, shot_id: int) -> list[dict[str, Any]]:
        """The versions a screenshot shows, with their numbered addresses."""
        rows = [self.store.version(v) for v in self.store.screenshots.versions_of(shot_id)]
        return [
            {**row, "href": version_url(row["watch_id"], row["key"], row["seq"])}
            for row in rows
            if row is not None
        ]


def _png(data: bytes, sha256: str | None) -> Response:
    headers = dict(_IMAGE_HEADERS)
    if sha256:
        headers["X-Content-SHA256"] = sha256
    return Response(data, media_type="image/png", headers=headers)
