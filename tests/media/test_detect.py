"""Faces and number plates suggested on a photo, and the blur that hides them
(app/media/detect.py): plain functions, no database, no app.

The detector is measured on a labelled set built here, the same on every run (fixed
seeds): street-like scenes of 1280 × 960 into which the 100 real faces of the LFW subset
bundled in scikit-image's wheel are pasted at 60–160 px, with its 100 crops of non-faces
(the background of the same photos) and clutter (buildings, cars, lane lines, blank
coloured panels, blue street signs with white writing); and plates drawn with Pillow:
blue (white characters, 440 : 140), green new-energy (black characters, 480 : 140) and
yellow (black characters), 80–300 px wide, some turned up to 5° and compressed again,
the whole scene then stored as JPEG like a rider's photo. ``pytest -s`` prints the
figures the README quotes.
"""

import importlib.resources
import io
import math
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from app.media.detect import (
    BLUR_CELLS,
    BLUR_MARGIN,
    Box,
    BoxKind,
    Suggestion,
    blur_boxes,
    suggest_boxes,
)

SKIMAGE_DATA = importlib.resources.files("skimage") / "data"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
SCENE = (1280, 960)
SCENES = 12
MATCH_IOU = 0.3
# The astronaut's face in skimage's astronaut.png (512 × 512), drawn by hand.
ASTRONAUT_FACE = Box(176, 60, 96, 112)

# Floors and ceilings, a little below (above) what the set measures; see the README.
# Measured: faces 0.86 and 0.00, plates 1.00 and 0.33 (all on the blue street signs).
FACE_RECALL_FLOOR = 0.76
FACE_FALSE_ALARMS_CEILING = 0.25
PLATE_RECALL_FLOOR = 0.9
PLATE_FALSE_ALARMS_CEILING = 0.5


# --- the labelled set ------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    image: Image.Image
    faces: list[Box]
    plates: list[Box]
    plate_colours: list[str]


@cache
def lfw() -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The LFW subset's 25 × 25 crops: the first 100 are faces, the last 100 are not
    (skimage.data.lfw_subset's docstring)."""
    with (SKIMAGE_DATA / "lfw_subset.npy").open("rb") as file:
        crops = np.load(file)
    pixels = np.clip(np.rint(crops * 255), 0, 255).astype(np.uint8)
    return pixels[:100], pixels[100:]


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if FONT.exists():
        return ImageFont.truetype(str(FONT), size)
    return ImageFont.load_default(size)


def plate_text(rng: np.random.Generator, kind: str) -> str:
    province = "沪京苏浙粤川鲁豫" if FONT.exists() else ""
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    digits = "0123456789"
    head = (str(rng.choice(list(province))) if province else "") + str(rng.choice(list(letters)))
    if kind == "green":
        return head + str(rng.choice(["D", "F"])) + "".join(rng.choice(list(digits), 5))
    tail = "".join(rng.choice(list(letters + digits * 3), 5))
    return head + ("·" if province else " ") + tail


def draw_plate(rng: np.random.Generator, *, kind: str, width: int) -> Image.Image:
    """A plate as a camera sees it head on: its colour, a thin border, its characters."""
    height = round(width * 140 / (480 if kind == "green" else 440))
    if kind == "blue":
        plate = Image.new("RGB", (width, height), (18, 62, 186))
        ink: tuple[int, int, int] = (245, 245, 245)
    elif kind == "yellow":
        plate = Image.new("RGB", (width, height), (236, 184, 18))
        ink = (15, 15, 15)
    else:
        top, bottom = np.array([170, 228, 180]), np.array([52, 170, 84])
        shades = np.linspace(0, 1, height)[:, None] * (bottom - top) + top
        rows = np.repeat(shades[:, None, :], width, axis=1)
        plate = Image.fromarray(np.rint(rows).astype(np.uint8))
        ink = (15, 15, 15)
    draw = ImageDraw.Draw(plate)
    inset = max(1, round(height * 0.05))
    if kind != "green":
        draw.rectangle(
            (inset, inset, width - 1 - inset, height - 1 - inset),
            outline=ink,
            width=max(1, round(height * 0.025)),
        )
    text = plate_text(rng, kind)
    size = round(height * 0.62)
    face = font(size)
    left, top_, right, bottom_ = draw.textbbox((0, 0), text, font=face)
    # Plates' characters are narrow and tall: the line is drawn wide, then fitted.
    line = Image.new("L", (int(right - left) + 4, int(bottom_ - top_) + 4), 0)
    ImageDraw.Draw(line).text((2 - left, 2 - top_), text, fill=255, font=face)
    target = (round(width * 0.86), round(height * 0.66))
    line = line.resize(target, Image.Resampling.LANCZOS)
    plate.paste(
        Image.new("RGB", target, ink),
        ((width - target[0]) // 2, (height - target[1]) // 2),
        line,
    )
    return plate


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def background(rng: np.random.Generator) -> Image.Image:
    """A street: a grey or blue sky, buildings with windows, a grey road with lane
    lines, parked cars of plates' colours too, signs, noise."""
    width, height = SCENE
    horizon = int(rng.integers(height // 4, height // 2))
    clear = rng.random() < 0.5  # a blue sky, as blue as a plate, with clouds and wires
    scene = Image.new("RGB", SCENE, (70, 130, 215) if clear else (150, 160, 175))
    draw = ImageDraw.Draw(scene)
    if clear:
        for _ in range(5):
            cx, cy = int(rng.integers(0, width)), int(rng.integers(0, horizon))
            rx, ry = int(rng.integers(40, 160)), int(rng.integers(15, 50))
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(235, 240, 245))
        for _ in range(3):
            y0, y1 = int(rng.integers(0, horizon)), int(rng.integers(0, horizon))
            draw.line((0, y0, width, y1), fill=(30, 30, 35), width=2)
    x = 0
    while x < width:
        w = int(rng.integers(120, 320))
        top = int(rng.integers(0, horizon // 2))
        wall = tuple(int(c) for c in rng.integers(90, 220, 3))
        draw.rectangle((x, top, x + w, horizon), fill=wall)
        for wy in range(top + 15, horizon - 20, 40):
            for wx in range(x + 12, x + w - 20, 34):
                draw.rectangle((wx, wy, wx + 18, wy + 24), fill=(60, 70, 80))
        x += w
    for y in range(horizon, height):
        shade = 95 + round(25 * (y - horizon) / (height - horizon))
        draw.line((0, y, width, y), fill=(shade, shade, shade + 3))
    for lane in range(3):
        y = horizon + (lane + 1) * (height - horizon) // 4
        colour = (230, 230, 230) if lane != 1 else (225, 190, 40)
        for x in range(int(rng.integers(0, 80)), width, 160):
            draw.polygon([(x, y), (x + 90, y), (x + 96, y + 8), (x + 6, y + 8)], fill=colour)
    for _ in range(6):  # cars: bodies of any colour, plates' colours too, no characters
        w, h = int(rng.integers(160, 360)), int(rng.integers(70, 150))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(horizon, height - h))
        body = [(20, 60, 180), (230, 180, 20), (60, 170, 80), (200, 30, 30), (240, 240, 240)]
        colour = body[int(rng.integers(len(body)))]
        draw.rounded_rectangle((x, y, x + w, y + h), radius=h // 4, fill=colour)
        draw.rectangle((x + w // 5, y + 6, x + 4 * w // 5, y + h // 3), fill=(40, 50, 60))
    for _ in range(2):  # shop signs: white writing on red or black
        w, h = int(rng.integers(200, 420)), int(rng.integers(50, 90))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, max(1, horizon - h)))
        draw.rectangle((x, y, x + w, y + h), fill=[(190, 20, 25), (25, 25, 25)][_ % 2])
        draw.text((x + 10, y + h // 5), "便利店 24h 外卖", fill=(250, 250, 250), font=font(h // 2))
    if rng.random() < 0.5:  # a blue street sign: the look of a blue plate, on purpose
        w, h = int(rng.integers(220, 360)), int(rng.integers(60, 90))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, max(1, horizon - h)))
        draw.rectangle((x, y, x + w, y + h), fill=(20, 70, 170))
        draw.text((x + 12, y + h // 6), "长宁路", fill=(250, 250, 250), font=font(h // 2))
        draw.text((x + 12, y + 2 * h // 3), "CHANGNING RD", fill=(250, 250, 250), font=font(h // 5))
    pixels = np.asarray(scene).astype(np.int16) + rng.normal(0, 6, (height, width, 1)).astype(
        np.int16
    )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def place(rng: np.random.Generator, taken: list[Box], size: tuple[int, int]) -> Box:
    """A free spot for something of ``size``, 12 px clear of everything placed."""
    width, height = SCENE
    for _ in range(500):
        box = Box(
            int(rng.integers(0, width - size[0])), int(rng.integers(0, height - size[1])), *size
        )
        if all(iou_or_touch(box, other) for other in taken):
            taken.append(box)
            return box
    raise AssertionError("the scene is too full")


def iou_or_touch(a: Box, b: Box) -> bool:
    gap = 12
    return (
        a.x + a.w + gap <= b.x
        or b.x + b.w + gap <= a.x
        or a.y + a.h + gap <= b.y
        or b.y + b.h + gap <= a.y
    )


def scene(index: int) -> Labelled:
    rng = np.random.default_rng(1000 + index)
    image = background(rng)
    faces, non_faces = lfw()
    taken: list[Box] = []
    face_boxes: list[Box] = []
    plate_boxes: list[Box] = []
    plate_colours: list[str] = []
    per_scene = math.ceil(len(faces) / SCENES)
    for crop in faces[index * per_scene : (index + 1) * per_scene]:
        side = int(rng.integers(60, 161))
        box = place(rng, taken, (side, side))
        image.paste(
            Image.fromarray(crop).resize((side, side), Image.Resampling.BICUBIC), (box.x, box.y)
        )
        face_boxes.append(box)
    for crop in non_faces[index * per_scene : (index + 1) * per_scene]:
        side = int(rng.integers(60, 161))
        box = place(rng, taken, (side, side))
        image.paste(
            Image.fromarray(crop).resize((side, side), Image.Resampling.BICUBIC), (box.x, box.y)
        )
    for number in range(5):
        kind = ("blue", "blue", "blue", "green", "yellow")[(number + index) % 5]
        width = round(math.exp(rng.uniform(math.log(80), math.log(300))))
        plate = draw_plate(rng, kind=kind, width=width)
        if rng.random() < 0.5:
            plate = jpeg(plate, int(rng.integers(50, 80)))
        mask = Image.new("L", plate.size, 255)
        angle = float(rng.uniform(-5, 5)) if rng.random() < 0.6 else 0.0
        if angle:
            plate = plate.rotate(angle, Image.Resampling.BICUBIC, expand=True)
            mask = mask.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        box = place(rng, taken, plate.size)
        image.paste(plate, (box.x, box.y), mask)
        plate_boxes.append(box)
        plate_colours.append(kind)
    return Labelled(jpeg(image, 85), face_boxes, plate_boxes, plate_colours)


@dataclass(frozen=True)
class Run:
    labelled: Labelled
    suggestions: list[Suggestion]
    seconds: float


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    found = []
    for index in range(SCENES):
        labelled = scene(index)
        start = time.process_time()
        suggestions = suggest_boxes(labelled.image)
        found.append(Run(labelled, suggestions, time.process_time() - start))
    return found


def iou(a: Box, b: Box) -> float:
    iw = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    ih = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a.w * a.h + b.w * b.h - inter)


@dataclass(frozen=True)
class Figures:
    found: int
    total: int
    false_alarms: int
    images: int

    @property
    def recall(self) -> float:
        return self.found / self.total

    @property
    def false_alarms_per_image(self) -> float:
        return self.false_alarms / self.images

    def __str__(self) -> str:
        return (
            f"recall {self.recall:.2f} ({self.found}/{self.total}), "
            f"{self.false_alarms_per_image:.2f} false alarms per image"
        )


def figures(runs: list[Run], kind: BoxKind) -> Figures:
    found = false_alarms = total = 0
    for run in runs:
        truth = run.labelled.faces if kind is BoxKind.FACE else run.labelled.plates
        boxes = [s.box for s in run.suggestions if s.kind is kind]
        total += len(truth)
        found += sum(any(iou(t, b) >= MATCH_IOU for b in boxes) for t in truth)
        false_alarms += sum(all(iou(t, b) < MATCH_IOU for t in truth) for b in boxes)
    return Figures(found, total, false_alarms, len(runs))


# --- what the detector finds -----------------------------------------------------------


def test_faces_are_found_on_the_labelled_set(runs: list[Run]) -> None:
    faces = figures(runs, BoxKind.FACE)
    seconds = sorted(run.seconds for run in runs)
    print(f"\nfaces: {faces}; {SCENES} scenes of {SCENE[0]}×{SCENE[1]}, median", end=" ")
    print(f"{seconds[len(seconds) // 2] * 1000:.0f} ms of processor time a scene")
    assert faces.recall >= FACE_RECALL_FLOOR
    assert faces.false_alarms_per_image <= FACE_FALSE_ALARMS_CEILING


def test_plates_are_found_on_the_labelled_set(runs: list[Run]) -> None:
    plates = figures(runs, BoxKind.PLATE)
    by_colour: dict[str, list[bool]] = {}
    for run in runs:
        boxes = [s.box for s in run.suggestions if s.kind is BoxKind.PLATE]
        for truth, colour in zip(run.labelled.plates, run.labelled.plate_colours, strict=True):
            found = any(iou(truth, b) >= MATCH_IOU for b in boxes)
            by_colour.setdefault(colour, []).append(found)
    colours = ", ".join(f"{c} {sum(f)}/{len(f)}" for c, f in by_colour.items())
    print(f"\nplates: {plates} ({colours})")
    assert plates.recall >= PLATE_RECALL_FLOOR
    assert plates.false_alarms_per_image <= PLATE_FALSE_ALARMS_CEILING


def test_the_astronauts_face_is_found() -> None:
    astronaut = Image.open(SKIMAGE_DATA / "astronaut.png").convert("RGB")  # type: ignore[arg-type]
    faces = [s for s in suggest_boxes(astronaut) if s.kind is BoxKind.FACE]
    assert any(iou(s.box, ASTRONAUT_FACE) >= MATCH_IOU for s in faces), faces


def test_suggestions_are_in_the_image_scored_and_sorted(runs: list[Run]) -> None:
    for run in runs:
        width, height = run.labelled.image.size
        scores = [s.score for s in run.suggestions]
        assert scores == sorted(scores, reverse=True)
        for s in run.suggestions:
            assert 0.0 <= s.score <= 1.0
            assert s.box.w > 0 and s.box.h > 0
            assert s.box.x >= 0 and s.box.x + s.box.w <= width
            assert s.box.y >= 0 and s.box.y + s.box.h <= height


def test_a_large_photo_is_searched_smaller_and_its_boxes_given_in_its_pixels(
    runs: list[Run],
) -> None:
    """The first scene at 2048 × 1536: the same things found, in the larger pixels, in
    well under a second of processor time (all of OpenCV's threads counted, as if on one
    core; the best of three), whatever else the machine is running."""
    run = runs[0]
    factor = 2048 / SCENE[0]
    large = run.labelled.image.resize((2048, 1536), Image.Resampling.BICUBIC)
    seconds = []
    for _ in range(3):
        start = time.process_time()
        suggestions = suggest_boxes(large)
        seconds.append(time.process_time() - start)
    print(f"\n2048×1536: {min(seconds) * 1000:.0f} ms of processor time (best of three)")
    for kind, truth in ((BoxKind.FACE, run.labelled.faces), (BoxKind.PLATE, run.labelled.plates)):
        scaled = [
            Box(*(round(v * factor) for v in (t.x, t.y, t.w, t.h)))
            for t in truth
            if any(iou(t, s.box) >= MATCH_IOU for s in run.suggestions if s.kind is kind)
        ]
        boxes = [s.box for s in suggestions if s.kind is kind]
        found = sum(any(iou(t, b) >= MATCH_IOU for b in boxes) for t in scaled)
        assert found >= len(scaled) - 1, (kind, found, len(scaled))
    assert min(seconds) < 0.75


# --- the blur --------------------------------------------------------------------------


def laplacian_variance(pixels: NDArray[np.uint8]) -> float:
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def detail(pixels: NDArray[np.uint8]) -> NDArray[np.float64]:
    """A region's fine detail: what is left after taking away its local means."""
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return gray - cv2.GaussianBlur(gray, (0, 0), 1.5)


def inside(pixels: NDArray[np.uint8], box: Box) -> NDArray[np.uint8]:
    return pixels[box.y : box.y + box.h, box.x : box.x + box.w]


def test_blurred_boxes_keep_no_detail_of_the_original(runs: list[Run]) -> None:
    """Each box of a scene hidden alone (so that no neighbour's box shows in it): the
    originals have detail, the copies only the rounding of a smooth slope, and what
    detail they have does not follow the original's."""
    labelled = runs[1].labelled
    before = np.asarray(labelled.image)
    for box in labelled.faces + labelled.plates:
        original = inside(before, box)
        copy = inside(np.asarray(blur_boxes(labelled.image, [box])), box)
        assert laplacian_variance(original) > 20, box
        assert laplacian_variance(copy) < 3, box
        correlation = float(np.corrcoef(detail(original).ravel(), detail(copy).ravel())[0, 1])
        assert abs(correlation) < 0.1, (box, correlation)


def test_a_plates_characters_are_gone(runs: list[Run]) -> None:
    labelled = runs[1].labelled
    copy = np.asarray(blur_boxes(labelled.image, labelled.plates))
    for box in labelled.plates:
        gray = cv2.cvtColor(inside(copy, box), cv2.COLOR_RGB2GRAY)
        assert np.count_nonzero(cv2.Canny(gray, 50, 150)) <= 0.002 * gray.size, box
    assert [s for s in suggest_boxes(Image.fromarray(copy)) if s.kind is BoxKind.PLATE] == []


def test_pixels_outside_the_grown_boxes_are_unchanged(runs: list[Run]) -> None:
    labelled = runs[1].labelled
    boxes = labelled.faces + labelled.plates
    before, after = np.asarray(labelled.image), np.asarray(blur_boxes(labelled.image, boxes))
    outside = np.ones(before.shape[:2], dtype=bool)
    for box in boxes:
        margin = max(2, round(BLUR_MARGIN * max(box.w, box.h)))
        outside[
            max(0, box.y - margin) : box.y + box.h + margin,
            max(0, box.x - margin) : box.x + box.w + margin,
        ] = False
    assert np.array_equal(before[outside], after[outside])
    for box in boxes:
        assert not np.array_equal(inside(before, box), inside(after, box)), box


def test_a_blurred_face_is_no_longer_found() -> None:
    astronaut = Image.open(SKIMAGE_DATA / "astronaut.png").convert("RGB")  # type: ignore[arg-type]
    faces = [s.box for s in suggest_boxes(astronaut) if s.kind is BoxKind.FACE]
    assert faces
    copy = blur_boxes(astronaut, faces)
    assert [s for s in suggest_boxes(copy) if s.kind is BoxKind.FACE] == []


def test_the_copy_keeps_only_the_means_of_a_coarse_grid() -> None:
    """A face, and the same face with its pixels shuffled within each cell of the grid
    (a different picture, no face left, the same mean in every cell), hidden under a box
    as large as the image: the two copies are identical, so a copy cannot tell which it
    came from, nor give back the face."""
    faces, _ = lfw()
    side = 20 * BLUR_CELLS  # cells of 20 × 20 px
    face = np.asarray(
        Image.fromarray(faces[3]).resize((side, side), Image.Resampling.BICUBIC).convert("RGB")
    )
    cells = face.reshape(BLUR_CELLS, 20, BLUR_CELLS, 20, 3).transpose(0, 2, 1, 3, 4)
    cells = cells.reshape(BLUR_CELLS, BLUR_CELLS, 400, 3)
    order = np.random.default_rng(3).permutation(400)
    shuffled = cells[:, :, order].reshape(BLUR_CELLS, BLUR_CELLS, 20, 20, 3)
    shuffled = shuffled.transpose(0, 2, 1, 3, 4).reshape(side, side, 3)
    assert np.abs(face.astype(int) - shuffled.astype(int)).mean() > 10
    whole = [Box(0, 0, side, side)]
    one = blur_boxes(Image.fromarray(face), whole)
    other = blur_boxes(Image.fromarray(np.ascontiguousarray(shuffled)), whole)
    assert one.tobytes() == other.tobytes()


def test_blur_boxes_edge_cases() -> None:
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    ImageDraw.Draw(image).rectangle((10, 10, 30, 30), fill=(250, 0, 0))
    unchanged = blur_boxes(image, [])
    assert unchanged is not image and unchanged.tobytes() == image.tobytes()
    outside = [Box(100, 100, 20, 20), Box(-50, 0, 10, 10), Box(5, 5, 0, 10), Box(5, 5, 10, 0)]
    assert blur_boxes(image, outside).tobytes() == image.tobytes()
    with pytest.raises(ValueError, match="negative"):
        blur_boxes(image, [Box(0, 0, -1, 5)])
    with pytest.raises(ValueError, match="negative"):
        blur_boxes(image, [Box(0, 0, 5, -1)])
    corner = blur_boxes(image, [Box(-10, -10, 30, 30)])  # clipped to the top left corner
    assert corner.size == image.size and corner.tobytes() != image.tobytes()
    assert blur_boxes(image.convert("L"), [Box(8, 8, 30, 30)]).mode == "L"
