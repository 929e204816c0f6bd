"""A rider's photo that shows a person and a car: a face (skimage's astronaut, a real
photo bundled in its wheel) and a blue Shanghai plate drawn with Pillow, on a grey road."""

import importlib.resources
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app.media import Box

SIZE = (1024, 768)
# Where the face and the plate are, in the photo's pixels.
FACE = Box(x=100 + 176, y=100 + 60, w=96, h=112)
PLATE = Box(x=620, y=520, w=264, h=84)
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def photo_with_a_face_and_a_plate() -> bytes:
    """The photo as a phone sends it (JPEG)."""
    image = Image.new("RGB", SIZE, (118, 120, 122))
    draw = ImageDraw.Draw(image)
    for x in range(0, SIZE[0], 64):  # lane markings, so that the road is not flat
        draw.rectangle((x, 700, x + 30, 708), fill=(230, 230, 230))
    astronaut = Image.open(
        io.BytesIO((importlib.resources.files("skimage") / "data" / "astronaut.png").read_bytes())
    ).convert("RGB")
    image.paste(astronaut, (100, 100))
    draw.rectangle(
        (PLATE.x - 40, PLATE.y - 60, PLATE.x + PLATE.w + 40, PLATE.y + PLATE.h + 40),
        fill=(40, 40, 45),
    )
    draw.rectangle((PLATE.x, PLATE.y, PLATE.x + PLATE.w, PLATE.y + PLATE.h), fill=(20, 60, 190))
    size = 52
    font = ImageFont.truetype(str(FONT), size) if FONT.exists() else ImageFont.load_default()
    draw.text((PLATE.x + 14, PLATE.y + 12), "沪A·12345", fill=(245, 245, 245), font=font)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()
