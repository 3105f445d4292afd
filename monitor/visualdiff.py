"""What changed between two screenshots of a page, as rectangles: a pixel diff with a
tolerance (Pillow), the changed pixels grouped into regions, and copies of the screenshots
with those regions outlined.

A pixel counts as changed when one of its colour channels moved by more than `tolerance`
(0-255): antialiasing, font hinting and JPEG re-encoding move channels by a few levels and
are not a change. Changed pixels are gathered on a grid of `CELL`-pixel cells; cells that
touch, or lie within one cell of each other, are one region, whose rectangle is the exact
bounding box of its changed pixels. Regions of fewer than `MIN_PIXELS` changed pixels
(a stray speck of rendering noise) are dropped.

The share of the page that changed (`VisualDiff.changed`) is the outlined regions' area
over the page's: what a reader sees as "this part of the page is different", which for a
replaced picture is the picture, however many of its pixels happen to keep their colour.
Screenshots of different sizes are compared on the larger canvas: what only one of them
covers has changed.

Pillow is the browser extra's (pyproject.toml); this module is imported only where a watch
takes screenshots or the UI shows them.
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass, field

from PIL import Image, ImageChops, ImageDraw, ImageFilter

# A channel must move by more than this (of 255) for its pixel to count as changed.
TOLERANCE = 40
# Side of the grid cells changed pixels are gathered on, in pixels.
CELL = 8
# Regions with fewer changed pixels than this are rendering noise, not a change.
MIN_PIXELS = 4
# The outline drawn around a changed region: colour and width in pixels.
OUTLINE = (220, 0, 0)
OUTLINE_WIDTH = 3
# Screenshots are ours (Chromium's PNGs, of a bounded height); anything larger than this
# is refused rather than decoded.
MAX_PIXELS = 60_000_000

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)


class ImageUnreadable(ValueError):
    """Bytes that are not a PNG (or another image Pillow reads) of a sane size."""


@dataclass(frozen=True)
class VisualDiff:
    width: int  # the canvas compared: the larger of the two screenshots
    height: int
    boxes: list[Box] = field(default_factory=list)
    pixels: int = 0  # changed pixels, in every region kept

    @property
    def area(self) -> int:
        return sum((right - left) * (bottom - top) for left, top, right, bottom in self.boxes)

    @property
    def changed(self) -> float:
        """The outlined regions' share of the page, 0-1."""
        total = self.width * self.height
        return min(1.0, self.area / total) if total else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "changed": round(self.changed, 6),
            "regions": [list(box) for box in self.boxes],
        }


def open_image(data: bytes) -> Image.Image:
    """The image in `data`, as RGB; ImageUnreadable when it is none or too large."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ImageUnreadable(f"image of {image.width}x{image.height} pixels is too large")
        image.load()
    except ImageUnreadable:
        raise
    except Exception as err:  # Pillow raises many types for bad bytes
        raise ImageUnreadable(f"not a readable image: {err}") from None
    return image.convert("RGB")


def size_of(data: bytes) -> tuple[int, int]:
    """Width and height of an image, without decoding its pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception as err:
        raise ImageUnreadable(f"not a readable image: {err}") from None


def visual_diff(before: bytes, after: bytes, tolerance: int = TOLERANCE) -> VisualDiff:
    """The regions where `after` differs from `before` (see the module's docstring)."""
    old, new = open_image(before), open_image(after)
    width, height = max(old.width, new.width), max(old.height, new.height)
    common = (min(old.width, new.width), min(old.height, new.height))
    # What only one screenshot covers is changed: the mask starts all changed and the
    # common part is filled in from the comparison.
    mask = Image.new("L", (width, height), 255)
    mask.paste(_changed_pixels(old, new, common, tolerance), (0, 0))
    boxes, pixels = _regions(mask)
    return VisualDiff(width, height, boxes, pixels)


def _changed_pixels(
    old: Image.Image, new: Image.Image, size: tuple[int, int], tolerance: int
) -> Image.Image:
    """255 where a channel moved by more than `tolerance`, 0 elsewhere ("L" mode)."""
    box = (0, 0, *size)
    difference = ImageChops.difference(old.crop(box), new.crop(box))
    red, green, blue = difference.split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    table = [0] * (tolerance + 1) + [255] * (255 - tolerance)
    return largest.point(table)


def _regions(mask: Image.Image) -> tuple[list[Box], int]:
    """Connected groups of changed cells (neighbours within one cell), as the bounding
    boxes of their changed pixels, top to bottom; and the changed pixels they hold."""
    columns, rows = -(-mask.width // CELL), -(-mask.height // CELL)
    # A cell is changed when any of its pixels is: the largest of its pixels, per cell.
    padded = Image.new("L", (columns * CELL, rows * CELL), 0)
    padded.paste(mask, (0, 0))
    # (Averaging a cell with one changed pixel of 64 gives 255/64 ≈ 4: still nonzero.)
    cells = padded.reduce(CELL)
    grown = cells.filter(ImageFilter.MaxFilter(3))  # neighbours one cell apart join up
    marked = grown.tobytes()
    seen = bytearray(len(marked))
    boxes: list[Box] = []
    pixels = 0
    for start, value in enumerate(marked):
        if not value or seen[start]:
            continue
        seen[start] = 1
        queue = deque([start])
        left, top, right, bottom = columns, rows, -1, -1
        while queue:
            index = queue.popleft()
            row, column = divmod(index, columns)
            left, right = min(left, column), max(right, column)
            top, bottom = min(top, row), max(bottom, row)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = row + dr, column + dc
                if 0 <= r < rows and 0 <= c < columns:
                    neighbour = r * columns + c
                    if marked[neighbour] and not seen[neighbour]:
                        seen[neighbour] = 1
                        queue.append(neighbour)
        # The group's cells, widened by one cell, hold all its changed pixels: their exact
        # bounding box is the region.
        area = (
            max(0, left * CELL),
            max(0, top * CELL),
            min(mask.width, (right + 1) * CELL),
            min(mask.height, (bottom + 1) * CELL),
        )
        part = mask.crop(area)
        inner = part.getbbox()
        if inner is None:
            continue
        count = part.histogram()[255]
        if count < MIN_PIXELS:
            continue
        x, y = area[0], area[1]
        boxes.append((x + inner[0], y + inner[1], x + inner[2], y + inner[3]))
        pixels += count
    boxes.sort(key=lambda box: (box[1], box[0]))
    return boxes, pixels


def outlined(data: bytes, boxes: list[Box]) -> bytes:
    """The image with each box outlined (just outside it, so nothing changed is hidden),
    as PNG. Boxes reaching past the image are clipped to it."""
    image = open_image(data)
    draw = ImageDraw.Draw(image)
    for left, top, right, bottom in boxes:
        if left >= image.width or top >= image.height:
            continue
        pad = OUTLINE_WIDTH
        frame = (
            max(0, left - pad),
            max(0, top - pad),
            min(image.width - 1, right - 1 + pad),
            min(image.height - 1, bottom - 1 + pad),
        )
        draw.rectangle(frame, outline=OUTLINE, width=OUTLINE_WIDTH)
    out = io.BytesIO()
    # A copy made to be looked at, not kept: fast compression (level 1 is 3x level 6's speed).
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
