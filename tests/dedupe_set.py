"""A varied image set for judging near-duplicate detection, drawn in code (no downloads).

Distinct pictures come in families whose members differ in one feature
only, the hard cases: cartoon faces on a flat background (another mouth,
other eyes, another face colour, a hat), flat shapes, short words that
differ in one letter, smooth photo-like images, and galaxy-like blobs on a
black sky. True duplicates are derived from them the way copies arise on the
web: JPEG or WebP re-encoding, resizing, a 1-2 % crop, a slight recolouring.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

BACKGROUNDS = [(255, 255, 255), (236, 232, 220), (130, 200, 240), (40, 40, 60)]
COLOURS = [(250, 210, 40), (225, 50, 45), (90, 180, 80), (70, 120, 230), (245, 140, 50), (190, 110, 220)]
EYES = ["dots", "closed", "wide", "wink", "angry"]
MOUTHS = ["smile", "grin", "frown", "open", "flat"]
EXTRAS = ["none", "hat", "glasses", "cheeks"]
WORDS = ["CAT", "CAR", "CAB", "BAT", "HAT", "HOT", "COT", "COB", "CUT", "CUP", "CAP", "MAP", "MAT", "RAT", "RAG", "BAG"]
SHAPES = ["circle", "square", "triangle", "diamond"]
DERIVATIONS = ["jpeg90", "jpeg70", "jpeg50", "jpeg35", "webp80", "half", "shrink-jpeg", "crop1", "crop2",
               "crop2-side", "recolour", "brighter"]


@dataclass
class Picture:
    """One image of the set: `group` names the distinct picture it shows."""

    name: str
    group: str
    image: Image.Image | None = None  # distinct originals
    data: bytes = b""  # derived copies, as encoded bytes
    suffix: str = ".png"


# ------------------------------------------------------------- distinct ones
def face(size: int, colour, background, eyes: str, mouth: str, extra: str) -> Image.Image:
    """A cartoon face filling most of a flat background."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    s = size / 100  # drawing units: percent of the side
    line = max(2, round(3 * s))
    ink = (20, 20, 20)
    draw.ellipse([15 * s, 18 * s, 85 * s, 88 * s], fill=colour, outline=ink, width=line)
    for cx in (37, 63):  # eyes
        if eyes == "dots" or (eyes == "wink" and cx == 37):
            draw.ellipse([(cx - 5) * s, 40 * s, (cx + 5) * s, 50 * s], fill=ink)
        elif eyes == "wide":
            draw.ellipse([(cx - 8) * s, 36 * s, (cx + 8) * s, 54 * s], fill=(255, 255, 255), outline=ink, width=line)
            draw.ellipse([(cx - 3) * s, 43 * s, (cx + 3) * s, 49 * s], fill=ink)
        elif eyes == "angry":
            draw.ellipse([(cx - 5) * s, 42 * s, (cx + 5) * s, 52 * s], fill=ink)
            tilt = 6 if cx == 37 else -6
            draw.line([(cx - 9) * s, (37 - tilt) * s, (cx + 9) * s, (37 + tilt) * s], fill=ink, width=2 * line)
        else:  # closed, or the winking eye
            draw.arc([(cx - 7) * s, 38 * s, (cx + 7) * s, 50 * s], 200, 340, fill=ink, width=2 * line)
    if mouth == "smile":
        draw.arc([32 * s, 52 * s, 68 * s, 76 * s], 20, 160, fill=ink, width=2 * line)
    elif mouth == "grin":
        draw.chord([30 * s, 54 * s, 70 * s, 80 * s], 0, 180, fill=(255, 255, 255), outline=ink, width=line)
        draw.line([30 * s, 67 * s, 70 * s, 67 * s], fill=ink, width=line)
    elif mouth == "frown":
        draw.arc([34 * s, 64 * s, 66 * s, 86 * s], 200, 340, fill=ink, width=2 * line)
    elif mouth == "open":
        draw.ellipse([42 * s, 60 * s, 58 * s, 78 * s], fill=(120, 20, 30), outline=ink, width=line)
    else:
        draw.line([36 * s, 70 * s, 64 * s, 70 * s], fill=ink, width=2 * line)
    if extra == "hat":
        draw.rectangle([30 * s, 4 * s, 70 * s, 22 * s], fill=(30, 30, 30))
        draw.rectangle([20 * s, 19 * s, 80 * s, 25 * s], fill=(30, 30, 30))
    elif extra == "glasses":
        for cx in (37, 63):
            draw.ellipse([(cx - 11) * s, 34 * s, (cx + 11) * s, 56 * s], outline=ink, width=line)
        draw.line([48 * s, 44 * s, 52 * s, 44 * s], fill=ink, width=line)
    elif extra == "cheeks":
        for cx in (27, 73):
            draw.ellipse([(cx - 6) * s, 56 * s, (cx + 6) * s, 64 * s], fill=(240, 120, 140))
    return image


def shapes(size: int, background, items: list[tuple[str, tuple, float, float]]) -> Image.Image:
    """Flat shapes (kind, colour, centre x, centre y in [0, 1]) on a flat background."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    r = size * 0.16
    for kind, colour, x, y in items:
        cx, cy = x * size, y * size
        if kind == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif kind == "square":
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif kind == "triangle":
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    return image


def word(size: int, text: str, colour, background) -> Image.Image:
    """A short word in large letters across a flat background."""
    image = Image.new("RGB", (size, size), background)
    font = ImageFont.load_default(size=round(size * 0.3))
    ImageDraw.Draw(image).text((size / 2, size / 2), text, fill=colour, font=font, anchor="mm")
    return image


def smooth_photo(rng: np.random.Generator, size: int) -> Image.Image:
    """Smooth random colour fields at two scales: like a photo seen at low resolution."""
    coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    fine = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    return Image.blend(coarse, fine, 0.35)


def galaxy(rng: np.random.Generator, size: int, number: int) -> Image.Image:
    """A bright elliptical blob with a core and some stars on a black sky.

    Orientation, shape and hue follow low-discrepancy sequences in `number`,
    so no two galaxies of the set coincide by chance.
    """
    y, x = (np.mgrid[:size, :size] - size / 2) / size
    # the 4-d Kronecker sequence of the generalised golden ratio: evenly spread, never repeating
    angle, width, ratio, hue = ((number + 1) * np.array([0.8566749, 0.7338919, 0.6287067, 0.5385973])) % 1
    angle, width, ratio = angle * np.pi, 0.07 + width * 0.15, 0.3 + ratio * 0.7
    u, v = x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)
    body = np.exp(-(u**2 + (v / ratio) ** 2) / (2 * width**2))
    core = np.exp(-(x**2 + y**2) / (2 * (width / 4) ** 2))
    hue = Image.new("HSV", (1, 1), (int(hue * 255), int(rng.uniform(90, 200)), 255))
    colour = np.asarray(hue.convert("RGB"), dtype=np.float64)[0, 0] * rng.uniform(0.5, 1.0)
    sky = body[..., None] * colour + core[..., None] * rng.uniform(180, 255)
    for _ in range(int(rng.integers(8, 40))):  # stars: points about a pixel wide at 64×64
        sx, sy = rng.uniform(-0.5, 0.5, 2)
        sky += np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * 0.006**2))[..., None] * rng.uniform(100, 255)
    return Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))


def distinct_pictures(count: int, seed: int = 0) -> list[Picture]:
    """`count` pairwise distinct pictures, cycling through the families (faces count double)."""
    rng = np.random.default_rng(seed)
    made: list[Picture] = []

    def add(kind: str, image: Image.Image) -> None:
        made.append(Picture(f"{kind}-{len(made):03d}", f"{kind}-{len(made):03d}", image))

    base, used = None, set()
    while len(made) < count:
        size = int(rng.choice([160, 200, 256]))
        turn = len(made) % 6
        if turn in (0, 1):  # a face, or its sibling differing in one feature (a grin vs a smile ...)
            if base is None or turn == 0:
                base = [COLOURS[rng.integers(6)], EYES[rng.integers(5)], MOUTHS[rng.integers(5)],
                        EXTRAS[rng.integers(4)]]
            else:
                which = int(rng.integers(4))
                options = [COLOURS, EYES, MOUTHS, EXTRAS][which]
                base[which] = options[(options.index(base[which]) + 1 + int(rng.integers(len(options) - 1)))
                                      % len(options)]
            key = tuple(base)
            if key in used:  # the same face again: draw another
                base = None
                continue
            used.add(key)
            add("face", face(size, base[0], BACKGROUNDS[len(made) // 6 % 4], *base[1:]))
        elif turn == 2:
            items = [(SHAPES[rng.integers(4)], COLOURS[rng.integers(6)], *rng.uniform(0.25, 0.75, 2))
                     for _ in range(int(rng.integers(1, 4)))]
            add("shapes", shapes(size, BACKGROUNDS[rng.integers(4)], items))
        elif turn == 3:
            k = len(made) // 6  # every (word, colour) once
            add("word", word(size, WORDS[k % len(WORDS)], COLOURS[k // len(WORDS) % 6],
                             BACKGROUNDS[k // (6 * len(WORDS)) % 4]))
        elif turn == 4:
            add("photo", smooth_photo(rng, size))
        else:
            add("galaxy", galaxy(rng, size, len(made) // 6))
    return made


# ------------------------------------------------------------- true copies
def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def derive(image: Image.Image, how: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """A copy of `image` made the way `how` says, as (encoded bytes, file suffix)."""
    w, h = image.size
    if how.startswith("jpeg"):
        return encode(image, "JPEG", quality=int(how[4:])), ".jpg"
    if how == "webp80":
        return encode(image, "WEBP", quality=80), ".webp"
    if how == "half":
        return encode(image.resize((w // 2, h // 2), Image.LANCZOS)), ".png"
    if how == "shrink-jpeg":
        return encode(image.resize((w * 7 // 10, h * 7 // 10), Image.BILINEAR), "JPEG", quality=80), ".jpg"
    if how.startswith("crop"):  # 1 or 2 % of the width and height cut off, on both sides or one
        share = 0.01 if how == "crop1" else 0.02
        if how == "crop2-side":  # the whole cut on one side: the content also shifts
            side = int(rng.integers(4))
            cut = [round(share * w), round(share * h)]
            box = [cut[0] * (side == 0), cut[1] * (side == 1), w - cut[0] * (side == 2), h - cut[1] * (side == 3)]
        else:
            cut = [round(share * w / 2), round(share * h / 2)]
            box = [cut[0], cut[1], w - cut[0], h - cut[1]]
        return encode(image.crop(box), "JPEG", quality=90), ".jpg"
    if how == "recolour":
        recoloured = ImageEnhance.Color(image).enhance(float(rng.uniform(0.9, 1.1)))
        return encode(recoloured, "JPEG", quality=85), ".jpg"
    if how == "brighter":
        return encode(ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.96, 1.04)))), ".png"
    raise ValueError(how)


def derived_pictures(originals: list[Picture], count: int, seed: int = 1) -> list[Picture]:
    """`count` true copies of the originals, cycling through every derivation."""
    rng = np.random.default_rng(seed)
    copies = []
    for i in range(count):
        original = originals[int(rng.integers(len(originals)))]
        how = DERIVATIONS[i % len(DERIVATIONS)]
        data, suffix = derive(original.image, how, rng)
        copies.append(Picture(f"{original.name}-{how}-{i:03d}", original.group, data=data, suffix=suffix))
    return copies


def write_set(folder: Path, distinct: int, copies: int, seed: int = 0) -> dict[str, str]:
    """Write the set under `folder` (originals in ``a-distinct/``, copies in ``b-copies/``, so
    originals come first) and return relative path -> group."""
    originals = distinct_pictures(distinct, seed)
    groups = {}
    copied = derived_pictures(originals, copies, seed + 1)
    for folder_name, pictures in (("a-distinct", originals), ("b-copies", copied)):
        (Path(folder) / folder_name).mkdir(parents=True, exist_ok=True)
        for picture in pictures:
            relative = f"{folder_name}/{picture.name}{picture.suffix}"
            data = picture.data or encode(picture.image)
            (Path(folder) / relative).write_bytes(data)
            groups[relative] = picture.group
    return groups


def rates(rows, groups: dict[str, str]) -> tuple[float, float]:
    """(share of distinct originals kept, share of copies dropped as a duplicate of their own
    original) for the manifest rows of a prepared set written by :func:`write_set`."""
    originals = [row for row in rows if row.source.startswith("a-distinct/")]
    copies = [row for row in rows if row.source.startswith("b-copies/")]
    kept = sum(row.status == "kept" for row in originals)

    def caught(row) -> bool:
        named = re.search(r"(?:looks like|same bytes as) (\S+)", row.detail)
        return row.reason in ("duplicate", "near-duplicate") and bool(named) \
            and groups.get(named.group(1)) == groups[row.source]

    return kept / len(originals), sum(map(caught, copies)) / len(copies)
