"""Boxes to hide on a rider's photo: faces and vehicle number plates, found on this
machine, and a blur that cannot be undone for the copy that is published.

``suggest_boxes`` only suggests: a person confirms, moves or adds boxes before anything
is published, so it favours finding most faces and plates over never being wrong.

Faces are found by the Haar cascades that ship inside OpenCV's wheel: the frontal one,
and the profile one on the photo and on its mirror image (it was trained on faces turned
one way only). They need nothing downloaded, no GPU and no model of our own, and run on
one core in a fraction of a second — which is why they search a smaller copy: the
frontal cascade one whose long side is 640 px, the profile one 400 px. A face smaller
than their 24 px window there is missed: a frontal face under about 1/27 of the photo's
long side (about 77 px on a 2048 px photo), a profile under 1/17 (about 120 px). They also
miss faces turned between a frontal view and a profile, faces far from upright, and
faces half hidden by a mask, a helmet's visor or a hand; and they fire now and then on
texture that looks like two eyes over a nose.

Plates are found by what mainland China's plates look like: blue plates with white
characters (440 × 140 mm, about 3.14 : 1), green new-energy plates (480 × 140 mm) and
yellow plates of large vehicles, both with black characters. Where the photo has a
plate's colour (HSV thresholds, gaps closed by morphology), a candidate is either a
region of it whose turned bounding rectangle it nearly fills, or — for a plate on a body
of its own colour, a blue plate on a blue car — a row of character-like holes in it.
A candidate counts if it is 2 to 6 times as wide as tall, at least 60 px wide, within
25° of level, and holds one line of characters: light (blue) or dark (yellow, green)
pixels, in marks most of the plate's height tall, several apart across it, in one band
with no empty row. The colours and the line of characters are what is looked for, so
this misses white police and embassy plates, black plates, plates seen at a steep angle
(no longer a wide rectangle), dirty, faded or shadowed plates whose colour leaves the
thresholds, and small ones; and it finds blue street signs with white writing.

``blur_boxes`` replaces each box by a coarse grid of mean colours (at most six cells on
its long side), smoothed by a Gaussian as wide as a cell: the region then carries a few
dozen numbers of the original, too few to give back a face or a plate's characters
whatever deblurring is tried — unlike a Gaussian blur alone, which can be partly undone.
"""

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

Array = NDArray[Any]


class BoxKind(StrEnum):
    FACE = "face"
    PLATE = "plate"


@dataclass(frozen=True)
class Box:
    """A rectangle in the image's pixels: the top left corner, the width and the height."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Suggestion:
    """A box to hide, what it holds, and how sure the detector is (0..1: a rank for
    ordering and a threshold, not a probability)."""

    box: Box
    kind: BoxKind
    score: float


# Faces are searched on a copy whose long side is at most this: the cascades' time grows
# with the pixel count, and a face that fits their window there is still found.
FACE_SIDE = 640
PROFILE_SIDE = 400
# Each size of face searched is this much larger than the last; the smallest face
# searched (the cascades' own window is 24 px); how many neighbouring windows must agree.
FACE_SCALE_STEP = 1.2
FACE_MIN = 24
FACE_NEIGHBOURS = 3
# Plates are searched at a higher resolution than faces: their characters are thin.
PLATE_SIDE = 1280
# The smallest plate suggested, in the original's pixels (its long side).
MIN_PLATE_LONG = 60
# Duplicates: two boxes of one kind are one thing when they overlap this much (IoU), or
# when the smaller lies this much inside the larger (cascades nest boxes on one face).
NMS_IOU = 0.3
NMS_INSIDE = 0.7
# The blur: at most this many cells on a box's long side, a margin of this share of the
# box's long side around it.
BLUR_CELLS = 6
BLUR_MARGIN = 0.1

_CASCADES = threading.local()


def _cascades() -> dict[str, Any]:
    # detectMultiScale changes the classifier it runs on (opencv/opencv#4287): each
    # thread a server calls this from has its own, loaded once.
    loaded: dict[str, Any] | None = getattr(_CASCADES, "loaded", None)
    if loaded is None:
        loaded = {
            name: cv2.CascadeClassifier(f"{cv2.data.haarcascades}haarcascade_{name}.xml")  # type: ignore[attr-defined]
            for name in ("frontalface_default", "profileface")
        }
        for name, cascade in loaded.items():
            if cascade.empty():
                raise RuntimeError(f"OpenCV's {name} cascade is missing from the cv2 package")
        _CASCADES.loaded = loaded
    return loaded


def _rgb(image: Image.Image) -> Array:
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


@dataclass(frozen=True)
class _View:
    """The photo as searched: its pixels, and their size over the original's."""

    pixels: Array
    scale: float

    def shrunk(self, side: int) -> "_View":
        """This view with its long side at most ``side``."""
        height, width = self.pixels.shape[:2]
        factor = min(1.0, side / max(height, width))
        if factor == 1.0:
            return self
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        pixels = cv2.resize(self.pixels, size, interpolation=cv2.INTER_AREA)
        return _View(np.asarray(pixels), self.scale * size[0] / width)


def _scaled_box(
    x: float, y: float, *, w: float, h: float, scale: float, width: int, height: int
) -> Box:
    left = max(0, min(width, math.floor(x / scale)))
    top = max(0, min(height, math.floor(y / scale)))
    right = max(left, min(width, math.ceil((x + w) / scale)))
    bottom = max(top, min(height, math.ceil((y + h) / scale)))
    return Box(left, top, right - left, bottom - top)


# --- faces -----------------------------------------------------------------------------

# (cascade, the long side searched, mirrored, weight): a profile hit is less often a
# face than a frontal one, and is searched smaller, where it costs half as much.
_FACE_PASSES = (
    ("frontalface_default", FACE_SIDE, False, 1.0),
    ("profileface", PROFILE_SIDE, False, 0.85),
    ("profileface", PROFILE_SIDE, True, 0.85),
)


def _faces(view: _View, *, width: int, height: int) -> list[Suggestion]:
    cascades = _cascades()
    grays: dict[int, tuple[Array, float]] = {}
    found: list[Suggestion] = []
    for name, side, mirrored, weight in _FACE_PASSES:
        if side not in grays:
            # Each smaller view is shrunk from the last: a shrink by an uneven ratio from
            # the full photo costs more than the search.
            view = view.shrunk(side)
            grays[side] = (
                cv2.equalizeHist(cv2.cvtColor(view.pixels, cv2.COLOR_RGB2GRAY)),
                view.scale,
            )
        gray, scale = grays[side]
        rects, neighbours = cascades[name].detectMultiScale2(
            cv2.flip(gray, 1) if mirrored else gray,
            scaleFactor=FACE_SCALE_STEP,
            minNeighbors=FACE_NEIGHBOURS,
            minSize=(FACE_MIN, FACE_MIN),
        )
        for (x, y, w, h), n in zip(rects, neighbours, strict=True):
            left = gray.shape[1] - x - w if mirrored else x
            # More neighbouring windows agreeing: more often a real face.
            score = weight * (1.0 - 1.0 / (1.0 + (float(n) - 2.0) / 6.0))
            box = _scaled_box(left, y, w=w, h=h, scale=scale, width=width, height=height)
            found.append(Suggestion(box, BoxKind.FACE, round(score, 3)))
    return found


# --- plates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlateColour:
    name: str
    low: tuple[int, int, int]  # OpenCV's HSV: hue 0..180, saturation and value 0..255
    high: tuple[int, int, int]
    light_characters: bool


_PLATE_COLOURS = (
    _PlateColour("blue", (100, 110, 60), (125, 255, 255), light_characters=True),
    _PlateColour("yellow", (15, 110, 110), (34, 255, 255), light_characters=False),
    # A new-energy plate fades from a pale green at the top to green at the bottom.
    _PlateColour("green", (36, 50, 90), (85, 255, 255), light_characters=False),
)
# Of a plate's height, its characters' (90 of 140 mm); of its width, their line's (409 of
# 440 mm on a blue plate, a little less on the others).
_CHARACTERS_HEIGHT = 0.64
_LINE_WIDTH = 0.9
# A plate's own shape, once straightened: this many pixels tall.
_PLATE_HEIGHT = 32
# JPEG's halved colour resolution leaves speckles and gaps in a plate's colour.
_CLOSING = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


@dataclass(frozen=True)
class _Rect:
    """A turned rectangle in a view: its centre, its long and short sides, and the angle
    of its long side (degrees, within ±90; positive turns it clockwise on screen)."""

    cx: float
    cy: float
    long: float
    short: float
    angle: float

    @classmethod
    def of(cls, contour: Array) -> "_Rect":
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if w < h:
            w, h, angle = h, w, angle - 90
        return cls(cx, cy, w, h, (angle + 90) % 180 - 90)

    def bounds(self, scale: float, *, width: int, height: int) -> Box:
        """The upright box around it, in the original's pixels."""
        cos, sin = abs(math.cos(math.radians(self.angle))), abs(math.sin(math.radians(self.angle)))
        half_w = (self.long * cos + self.short * sin) / 2
        half_h = (self.long * sin + self.short * cos) / 2
        return _scaled_box(
            self.cx - half_w,
            self.cy - half_h,
            w=2 * half_w,
            h=2 * half_h,
            scale=scale,
            width=width,
            height=height,
        )


def _plates(view: _View, *, width: int, height: int) -> list[Suggestion]:
    hsv = cv2.cvtColor(view.pixels, cv2.COLOR_RGB2HSV)
    min_long = MIN_PLATE_LONG * view.scale
    found: list[Suggestion] = []
    for colour in _PLATE_COLOURS:
        raw = cv2.inRange(hsv, colour.low, colour.high)
        mask = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, _CLOSING)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        large = [c for c in contours if max(cv2.boundingRect(c)[2:]) >= min_long]
        if not large:
            continue
        # A region of the colour that is itself a plate; and, for a plate on a body of its
        # own colour (a blue plate on a blue car), the line of characters within it: its
        # characters are holes in the colour.
        regions = [(_Rect.of(c), cv2.contourArea(c)) for c in large]
        candidates = [rect for rect, area in regions if area >= 0.6 * rect.long * rect.short]
        filled = np.zeros_like(mask)
        cv2.drawContours(filled, large, -1, 255, cv2.FILLED)
        candidates += _character_lines(cv2.bitwise_and(filled, cv2.bitwise_not(raw)), min_long)
        for rect in candidates:
            score = _plate_score(view.pixels, rect, colour=colour, min_long=min_long)
            if score > 0:
                box = rect.bounds(view.scale, width=width, height=height)
                found.append(Suggestion(box, BoxKind.PLATE, round(score, 3)))
    return found


def _character_lines(holes: Array, min_long: float) -> list[_Rect]:
    """Plates guessed from rows of at least four character-like holes: alike in height,
    level with one another, a character's height apart at most."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=8)
    x, y, w, h, area = (stats[1:, i].astype(np.float64) for i in range(5))
    # Taller than wide (or a narrow stroke such as "1"), not a solid block (a window).
    keep = (
        (h >= max(5.0, 0.15 * min_long))
        & (w <= 1.6 * h)
        & (area >= 0.12 * w * h)
        & ((area <= 0.85 * w * h) | (w <= 0.35 * h))
    )
    index = np.flatnonzero(keep)
    index = index[np.argsort(x[index])]
    parent = {int(i): int(i) for i in index}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cy = y + h / 2
    for position, i in enumerate(index):
        reach = x[i] + w[i] + 1.2 * h[i]
        for j in index[position + 1 :]:
            if x[j] > reach:
                break
            tall = max(h[i], h[j])
            if min(h[i], h[j]) >= tall / 1.6 and abs(cy[i] - cy[j]) <= 0.3 * tall:
                parent[root(int(j))] = root(int(i))
    lines: dict[int, list[int]] = {}
    for i in index:
        lines.setdefault(root(int(i)), []).append(int(i))
    rects = []
    for members in lines.values():
        if len(members) < 4:
            continue
        m = np.array(members)
        centres = x[m] + w[m] / 2
        slope = float(np.polyfit(centres, cy[m], 1)[0]) if np.ptp(centres) > 0 else 0.0
        angle = math.degrees(math.atan(slope))
        left, right = float(x[m].min()), float((x[m] + w[m]).max())
        middle = (left + right) / 2
        rects.append(
            _Rect(
                middle,
                float(np.mean(cy[m]) + slope * (middle - np.mean(centres))),
                (right - left) / math.cos(math.radians(angle)) / _LINE_WIDTH,
                float(np.median(h[m])) / _CHARACTERS_HEIGHT,
                angle,
            )
        )
    return rects


def _plate_score(rgb: Array, rect: _Rect, *, colour: _PlateColour, min_long: float) -> float:
    """How much this rectangle looks like a plate of this colour (0: not at all)."""
    if rect.short < 1 or abs(rect.angle) > 25 or rect.long < min_long:
        return 0.0
    aspect = rect.long / rect.short
    if not 2.0 <= aspect <= 6.0:
        return 0.0
    # Straightened to a plate of fixed height, the line of characters is measured there.
    out_w = max(8, round(_PLATE_HEIGHT * aspect))
    # Turned back by its angle about its centre, then stretched to that size.
    cos, sin = math.cos(math.radians(rect.angle)), math.sin(math.radians(rect.angle))
    sx, sy = out_w / rect.long, _PLATE_HEIGHT / rect.short
    warp = np.array(
        [
            [sx * cos, sx * sin, out_w / 2 - sx * (cos * rect.cx + sin * rect.cy)],
            [-sy * sin, sy * cos, _PLATE_HEIGHT / 2 - sy * (cos * rect.cy - sin * rect.cx)],
        ]
    )
    plate = cv2.warpAffine(rgb, warp, (out_w, _PLATE_HEIGHT), borderMode=cv2.BORDER_REPLICATE)
    inner = cv2.cvtColor(plate, cv2.COLOR_RGB2HSV)[3:-3, 3:-3]
    coloured = cv2.inRange(inner, colour.low, colour.high) > 0
    fill = float(coloured.mean())
    if fill < 0.35:
        return 0.0
    values = inner[..., 2].astype(np.int16)
    background = float(np.median(values[coloured]))
    if colour.light_characters:
        characters = (inner[..., 1] < 110) & (values > background + 40)
    else:
        characters = ~coloured & (values < background - 60)
    share = float(characters.mean())
    if not 0.06 <= share <= 0.6:
        return 0.0
    # One line of characters, most of the plate's height, with no empty row across it:
    # not rows of windows. Columns dark from top to bottom (a border's sides, something
    # in front) are no characters' and left out.
    strokes_only = characters[:, characters.mean(axis=0) < 0.9]
    band = _longest_run(strokes_only.mean(axis=1) >= 0.05) / characters.shape[0]
    strokes = _runs(characters.sum(axis=0) >= 2)
    if band < 0.4 or strokes < 4 or _tall_share(characters) < 0.5:
        return 0.0
    aspect_fit = math.exp(-(math.log(aspect / 3.3) ** 2) / (2 * 0.3**2))
    stroke_fit = min(1.0, strokes / 7.0)
    share_fit = math.exp(-((share - 0.25) ** 2) / (2 * 0.12**2))
    fill_fit = min(1.0, fill / 0.6)
    return min(1.0, 0.3 + 0.7 * aspect_fit * stroke_fit * share_fit * fill_fit)


def _tall_share(characters: Array) -> float:
    """The share of the character pixels in marks at least 40% as tall as the plate: a
    plate's characters are, small windows or speckles are not."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(characters.astype(np.uint8), connectivity=8)
    heights, areas = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_AREA]
    total = int(areas.sum())
    return float(areas[heights >= 0.4 * characters.shape[0]].sum()) / total if total else 0.0


def _runs(flags: Array) -> int:
    """Separate runs of True: of columns holding characters, about one per character."""
    starts = np.flatnonzero(flags[1:] & ~flags[:-1])
    return int(starts.size + (1 if flags[0] else 0))


def _longest_run(flags: Array) -> int:
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


# --- both ------------------------------------------------------------------------------


def _overlap(a: Box, b: Box) -> tuple[float, float]:
    """The intersection over the union, and over the smaller box's area."""
    iw = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    ih = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter = iw * ih
    area_a, area_b = a.w * a.h, b.w * b.h
    return inter / (area_a + area_b - inter), inter / max(1, min(area_a, area_b))


def _suppressed(suggestions: Iterable[Suggestion]) -> list[Suggestion]:
    kept: list[Suggestion] = []
    for candidate in sorted(suggestions, key=lambda s: -s.score):
        if candidate.box.w == 0 or candidate.box.h == 0:
            continue
        if not any(
            k.kind == candidate.kind
            and any(
                share >= limit
                for share, limit in zip(
                    _overlap(k.box, candidate.box), (NMS_IOU, NMS_INSIDE), strict=True
                )
            )
            for k in kept
        ):
            kept.append(candidate)
    return kept


def suggest_boxes(image: Image.Image) -> list[Suggestion]:
    """Faces and number plates on ``image``, in its pixels, the surest first.

    Overlapping boxes of one kind are merged into the surest of them. The photo is
    searched at a smaller size (its long side at most ``FACE_SIDE`` for faces and
    ``PLATE_SIDE`` for plates), and the boxes given back in the original's pixels."""
    width, height = image.size
    view = _View(_rgb(image), 1.0).shrunk(PLATE_SIDE)
    found = _plates(view, width=width, height=height) + _faces(view, width=width, height=height)
    return _suppressed(found)


# --- the blur --------------------------------------------------------------------------


def blur_boxes(image: Image.Image, boxes: Sequence[Box]) -> Image.Image:
    """A copy of ``image`` with every box hidden beyond recovery.

    Each box, grown by a margin (a tenth of its long side, at least 2 px) and clipped to
    the image, becomes a grid of at most ``BLUR_CELLS`` cells on its long side, each the
    mean colour of its pixels, blurred so that no grid shows. A box with no area inside
    the image is left out. Pixels outside the grown boxes are not changed."""
    for box in boxes:
        if box.w < 0 or box.h < 0:
            raise ValueError(f"a box has a negative width or height: {box}")
    # A palette or a bilevel image has no mean colours to hold.
    if image.mode in ("P", "1"):
        copy = image.convert("RGBA" if "transparency" in image.info else "RGB")
    else:
        copy = image.copy()
    width, height = copy.size
    for box in boxes:
        left, top = max(0, box.x), max(0, box.y)
        right, bottom = min(width, box.x + box.w), min(height, box.y + box.h)
        if right <= left or bottom <= top:
            continue
        margin = max(2, round(BLUR_MARGIN * max(box.w, box.h)))
        left, top = max(0, left - margin), max(0, top - margin)
        right, bottom = min(width, right + margin), min(height, bottom + margin)
        copy.paste(_coarse(copy.crop((left, top, right, bottom))), (left, top))
    return copy


def _coarse(region: Image.Image) -> Image.Image:
    w, h = region.size
    long = max(w, h)
    cells = (max(1, round(BLUR_CELLS * w / long)), max(1, round(BLUR_CELLS * h / long)))
    # BOX resampling averages every pixel of a cell: the grid is all that is kept.
    grid = region.resize(cells, Image.Resampling.BOX)
    smooth = grid.resize(region.size, Image.Resampling.BILINEAR)
    # A Gaussian as wide as a cell: no edge of the grid is left to show where it lay.
    return smooth.filter(ImageFilter.GaussianBlur(radius=max(1.0, long / BLUR_CELLS)))
