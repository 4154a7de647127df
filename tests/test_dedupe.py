"""Near duplicates are the same picture (re-encoded, resized, cropped, recoloured), not the same layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dedupe_set import BACKGROUNDS, COLOURS, face, galaxy, rates, word, write_set
from gan_helpers.datasets.dedupe import NEAR_DUPLICATE_LIMIT, NearDuplicates, planes, zoomed, difference
from gan_helpers.datasets.prepare import prepare_folder


def sixty_four(image: Image.Image) -> Image.Image:
    return image.resize((64, 64), Image.Resampling.LANCZOS)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def score(a: Image.Image, b: Image.Image) -> float:
    """The comparison prepare makes, for one pair."""
    a, b = sixty_four(a), sixty_four(b)
    return float(difference([planes(zoomed(a, z)) for z in (1.0, 0.99, 1.01, 0.98, 1.02)], [planes(b)])[0])


def test_the_reported_faces_are_all_kept(tmp_path):
    """A grin vs a smile, an angry red face vs an angry yellow one: four pictures, not two."""
    src = tmp_path / "faces"
    src.mkdir()
    face(200, COLOURS[0], BACKGROUNDS[0], "dots", "smile", "none").save(src / "a_smile.png")
    face(200, COLOURS[0], BACKGROUNDS[0], "dots", "grin", "none").save(src / "b_grin.png")
    face(200, COLOURS[1], BACKGROUNDS[0], "angry", "frown", "none").save(src / "c_angry_red.png")
    face(200, COLOURS[0], BACKGROUNDS[0], "angry", "frown", "none").save(src / "d_angry_yellow.png")
    jpeg(Image.open(src / "b_grin.png"), 60).save(src / "e_grin_again.jpg", quality=95)
    summary = prepare_folder(src, tmp_path / "out", progress=False)
    assert [row.source for row in summary.rows if row.status == "kept"] == [
        "a_smile.png", "b_grin.png", "c_angry_red.png", "d_angry_yellow.png"]
    assert summary.rows[-1].reason == "near-duplicate" and "b_grin.png" in summary.rows[-1].detail


def test_copies_score_under_the_limit_and_small_changes_over_it():
    rng = np.random.default_rng(4)
    smile = face(160, COLOURS[2], BACKGROUNDS[1], "wide", "smile", "none")
    sky = galaxy(rng, 160, 3)
    cat = word(160, "CAT", COLOURS[0], BACKGROUNDS[0])
    for image in (smile, sky, cat):
        assert score(jpeg(image, 40), image) < NEAR_DUPLICATE_LIMIT * 0.8
        assert score(image.crop((2, 0, 160, 158)), image) < NEAR_DUPLICATE_LIMIT * 0.8  # 1.25 % off two sides
    assert score(face(160, COLOURS[2], BACKGROUNDS[1], "wide", "frown", "none"), smile) > NEAR_DUPLICATE_LIMIT * 2
    assert score(galaxy(np.random.default_rng(5), 160, 4), sky) > NEAR_DUPLICATE_LIMIT * 1.5
    assert score(word(160, "CAR", COLOURS[0], BACKGROUNDS[0]), cat) > NEAR_DUPLICATE_LIMIT * 1.2


def test_every_distinct_picture_is_kept_and_every_copy_caught(tmp_path):
    """60 distinct pictures (faces, shapes, words, smooth photos, galaxies) and 60 copies of them."""
    groups = write_set(tmp_path / "set", distinct=60, copies=60, seed=3)
    summary = prepare_folder(tmp_path / "set", tmp_path / "out", progress=False)
    distinct_kept, copies_caught = rates(summary.rows, groups)
    print(f"distinct kept {distinct_kept:.0%}, copies caught {copies_caught:.0%}")
    assert (distinct_kept, copies_caught) == (1.0, 1.0)


def test_a_limit_is_a_parameter_and_none_turns_it_off(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    image = face(160, COLOURS[3], BACKGROUNDS[2], "dots", "open", "hat")
    image.save(src / "a.png")
    image.save(src / "b.jpg", quality=70)
    assert prepare_folder(src, tmp_path / "on", progress=False).kept == 1
    assert prepare_folder(src, tmp_path / "off", near_duplicate_limit=None, progress=False).kept == 2
    assert prepare_folder(src, tmp_path / "strict", near_duplicate_limit=0.5, progress=False).kept == 2


def test_other_output_sizes_are_compared_at_64(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    image = face(200, COLOURS[4], BACKGROUNDS[0], "closed", "grin", "glasses")
    image.save(src / "a.png")
    image.resize((150, 150)).save(src / "b.png")
    face(200, COLOURS[4], BACKGROUNDS[0], "closed", "smile", "glasses").save(src / "c.png")
    summary = prepare_folder(src, tmp_path / "out", size=50, min_size=50, progress=False)
    assert [row.status for row in summary.rows] == ["kept", "dropped", "kept"]


@pytest.mark.parametrize("count", [1, 70])  # the kept set outgrows its first allocation
def test_near_duplicates_remember_every_kept_image(count):
    near = NearDuplicates()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((64, 64)) for _ in range(count)]
    assert all(near.check(image, f"{i}.png") is None for i, image in enumerate(images))
    assert near.check(jpeg(images[-1], 80), "copy.jpg")[0] == f"{count - 1}.png"
