"""One file in, one 64×64 RGB image out: every colour mode, odd formats, and files that are no file."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from gan_helpers.datasets.convert import Dropped, center_square, convert_file, is_greyscale, to_rgb
from test_folders import finishes
from test_prepare import colour_image, make_awkward_folder


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    return make_awkward_folder(tmp_path_factory.mktemp("awkward") / "src")


def test_palette_transparency_is_flattened_onto_the_background(awkward):
    image = Image.open(awkward / "palette_alpha.png")
    assert np.asarray(to_rgb(image))[50, 5].tolist() == [0, 0, 0]
    assert np.asarray(to_rgb(image, (255, 255, 255)))[50, 5].tolist() == [255, 255, 255]
    assert np.asarray(to_rgb(image))[50, 80].sum() > 0  # the opaque part keeps its colour


def test_la_alpha_is_flattened():
    la = Image.merge("LA", (Image.new("L", (4, 4), 200), Image.new("L", (4, 4), 128)))
    assert np.asarray(to_rgb(la))[0, 0].tolist() == [100, 100, 100]  # 200 at half opacity over black


def test_sixteen_bit_grey_is_scaled_not_clipped(awkward):
    image = Image.open(awkward / "deep16_grey.png")
    assert image.mode.startswith("I;16")
    values = np.asarray(to_rgb(image), dtype=np.int16)
    assert values[48, 48, 0] == pytest.approx(128, abs=3)  # mid-ramp is mid-grey, not white
    assert values[0, 0].tolist() == [0, 0, 0] and values[-1, -1].tolist() == [255, 255, 255]


def test_sixteen_bit_rgb_keeps_its_colours(awkward):
    expected = np.asarray(colour_image(5, 96, 96), dtype=np.int16)
    got = np.asarray(to_rgb(Image.open(awkward / "deep16.png")), dtype=np.int16)
    assert np.abs(got - expected).max() <= 1


def test_cmyk_becomes_rgb():
    cyan = Image.new("CMYK", (8, 8), (255, 0, 0, 0))
    assert np.asarray(to_rgb(cyan))[0, 0].tolist() == [0, 255, 255]


def test_animated_gif_uses_the_first_frame(awkward, tmp_path):
    image = convert_file(awkward / "anim.gif")
    first = np.asarray(center_square(colour_image(8, 100, 100)), dtype=np.float64)
    second = np.asarray(center_square(colour_image(9, 100, 100)), dtype=np.float64)
    got = np.asarray(image, dtype=np.float64)
    assert np.abs(got - first).mean() < np.abs(got - second).mean() / 3


def test_center_square_crops_the_middle():
    wide = Image.new("RGB", (300, 100), (255, 0, 0))
    wide.paste((0, 0, 255), (100, 0, 200, 100))  # blue middle third
    out = np.asarray(center_square(wide))
    assert out.shape == (64, 64, 3)
    assert out[:, 2:-2, 2].min() > 240 and out[:, 2:-2, 0].max() < 15  # only the blue middle survives


def test_is_greyscale_ignores_a_few_coloured_pixels():
    grey = np.repeat(np.asarray(colour_image(30, 64, 64).convert("L"))[..., None], 3, axis=2)
    assert is_greyscale(Image.fromarray(grey))
    speckled = grey.copy()
    speckled[0, :20] = [255, 0, 0]  # 20 red stars out of 4096 pixels
    assert is_greyscale(Image.fromarray(speckled))
    assert not is_greyscale(colour_image(30, 64, 64))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")
def test_a_fifo_named_like_a_picture_is_dropped_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(Dropped) as drop:
        finishes(lambda: convert_file(tmp_path / "pipe.jpg"), [tmp_path / "pipe.jpg"])
    assert drop.value.reason == "not-a-file"


def test_a_missing_file_is_dropped_as_unreadable(tmp_path):
    with pytest.raises(Dropped) as drop:
        convert_file(tmp_path / "gone.jpg")
    assert drop.value.reason == "unreadable" and "No such file" in drop.value.detail
