"""Loading for training: one (N, 3, 64, 64) tensor in [0, 1], from any folder, deterministically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_helpers.datasets import loading, manifest, prepare
from gan_helpers.datasets.loading import image_paths, is_prepared, load_dataset
from gan_helpers.errors import UserError
from gan_helpers.datasets.prepare import prepare_folder
from test_prepare import colour_image, make_awkward_folder, tree_digest


def flat_set(folder: Path, count: int) -> Path:
    """A folder of 64×64 RGB PNGs, as a user might copy one in (no manifest)."""
    folder.mkdir(parents=True)
    for i in range(count):
        colour_image(100 + i, 64, 64).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Prepared copies go to a temporary cache, never the project's data folder."""
    monkeypatch.setattr(prepare, "CACHE_ROOT", tmp_path / "cache")
    return tmp_path / "cache"


def test_prepared_folder_loads_in_sorted_name_order(tmp_path):
    folder = flat_set(tmp_path / "set", 5)
    images = load_dataset(folder)
    assert images.shape == (5, 3, 64, 64) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1 and images.max() > 0.5
    expected = np.asarray(Image.open(folder / "img00.png"), dtype=np.float32) / 255
    assert torch.allclose(images[0], torch.from_numpy(expected).permute(2, 0, 1))
    assert [p.name for p in image_paths(folder)] == [f"img{i:02d}.png" for i in range(5)]


def test_max_images_takes_the_first_in_order(tmp_path):
    folder = flat_set(tmp_path / "set", 5)
    assert torch.equal(load_dataset(folder, max_images=2), load_dataset(folder)[:2])
    with pytest.raises(UserError, match="max_images is 0"):
        load_dataset(folder, max_images=0)


def test_too_few_images_for_a_batch(tmp_path):
    folder = flat_set(tmp_path / "set", 3)
    with pytest.raises(UserError, match="has 3 usable images but a batch needs 8; add images or lower --batch-size"):
        load_dataset(folder, min_images=8)
    with pytest.raises(UserError, match=r"has 2 usable images \(limited by max_images=2 of 3\)"):
        load_dataset(folder, max_images=2, min_images=3)


def test_flat_png_folder_is_not_prepared_again(tmp_path, monkeypatch):
    folder = flat_set(tmp_path / "set", 2)
    (folder / "notes.txt").write_text("where these came from")
    assert is_prepared(folder)
    monkeypatch.setattr(loading, "prepare_cached", lambda *a, **k: pytest.fail("prepared an already clean folder"))
    assert load_dataset(folder).shape[0] == 2


@pytest.mark.parametrize("spoil", ["big", "rgba", "jpeg", "subfolder"])
def test_anything_else_counts_as_raw(tmp_path, spoil):
    folder = flat_set(tmp_path / "set", 2)
    if spoil == "big":
        colour_image(1, 65, 64).save(folder / "odd.png")
    elif spoil == "rgba":
        colour_image(1, 64, 64).convert("RGBA").save(folder / "odd.png")
    elif spoil == "jpeg":
        colour_image(1, 64, 64).save(folder / "odd.jpg")
    else:
        (folder / "more").mkdir()
        colour_image(1, 64, 64).save(folder / "more" / "odd.png")
    assert not is_prepared(folder)


def test_raw_folder_is_prepared_through_the_cache(tmp_path, private_cache, monkeypatch):
    src = make_awkward_folder(tmp_path / "raw")
    before = tree_digest(src)
    images = load_dataset(src)
    assert images.shape == (9, 3, 64, 64)  # the nine usable files of the awkward folder
    assert tree_digest(src) == before  # the user's folder is only read
    assert len(list(private_cache.iterdir())) == 1
    monkeypatch.setattr(prepare, "prepare_folder", lambda *a, **k: pytest.fail("prepared twice"))
    assert torch.equal(load_dataset(src), images)  # the second load reuses the cache


def test_missing_folder_or_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="is a file, not a folder"):
        load_dataset(tmp_path / "file.png")


def test_prepared_set_missing_an_image_says_to_prepare_again(tmp_path):
    dst = tmp_path / "prepared"
    prepare_folder(flat_set(tmp_path / "src", 3), dst, progress=False)
    next(dst.glob("*.png")).unlink()
    with pytest.raises(UserError, match="prepare it again"):
        load_dataset(dst)


def test_a_damaged_prepared_image_says_to_prepare_again(tmp_path):
    dst = tmp_path / "prepared"
    prepare_folder(flat_set(tmp_path / "src", 2), dst, progress=False)
    victim = next(dst.glob("*.png"))
    victim.write_bytes(victim.read_bytes()[:60])  # cut short, as by a crash while it was written
    with pytest.raises(UserError, match=f"Image {victim} cannot be read .*prepare the folder again"):
        load_dataset(dst)


def test_default_set_loads_once_built_and_names_make_data_before(tmp_path, monkeypatch):
    default = tmp_path / "galaxies64"
    monkeypatch.setattr(loading, "DEFAULT_DATA", default)
    with pytest.raises(UserError, match=r"default data set .* is missing or incomplete; build it with make data") as error:
        load_dataset(default)
    assert "\n" not in str(error.value) and str(error.value).count(". ") == 0  # one sentence
    prepare_folder(flat_set(tmp_path / "src", 4), default, progress=False)
    with pytest.raises(UserError, match="make data"):  # prepared, but not a finished build of the recipe
        load_dataset(default)
    (default / manifest.BUILD_INFO).write_text(f'{{"recipe": {manifest.RECIPE_VERSION}, "package": "x"}}')
    assert load_dataset(default).shape[0] == 4
    assert load_dataset(str(default), max_images=2).shape[0] == 2
    (default / manifest.BUILD_INFO).write_text('{"recipe": 0, "package": "x"}')
    with pytest.raises(UserError, match="make data"):  # an older recipe's set is rebuilt, not trusted
        load_dataset(default)


def test_bad_device_is_a_user_error(tmp_path):
    folder = flat_set(tmp_path / "set", 1)
    assert load_dataset(folder, device="cpu").device.type == "cpu"
    with pytest.raises(UserError, match="Device 'nonsense'"):
        load_dataset(folder, device="nonsense")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_loads_onto_the_gpu(tmp_path):
    folder = flat_set(tmp_path / "set", 2)
    assert load_dataset(folder, device="cuda").device.type == "cuda"


def test_cleaning_demo_shows_every_kind_of_decision(tmp_path):
    images = torch.stack([torch.from_numpy(np.array(colour_image(200 + i, 64, 64))).permute(2, 0, 1)
                          for i in range(4)]).float() / 255
    src = loading.make_cleaning_demo(images, tmp_path / "demo")
    summary = prepare_folder(src, tmp_path / "prepared", progress=False)
    assert summary.kept == 5  # four photos and the transparent one
    assert set(summary.dropped_by_reason) == {"duplicate", "near-duplicate", "greyscale", "too-small", "aspect",
                                              "undecodable", "not-an-image", "empty"}
    assert loading.make_cleaning_demo(images, tmp_path / "demo") == src  # rebuilt from scratch, same files
    assert len(list(src.iterdir())) == len(summary.rows)
    with pytest.raises(UserError, match="at least 4 images"):
        loading.make_cleaning_demo(images[:3], tmp_path / "small")


def test_source_preview_shows_what_can_be_decoded(tmp_path):
    colour_image(1, 300, 30).save(tmp_path / "strip.png")
    (tmp_path / "notes.jpg").write_text("no picture")
    preview = loading.source_preview(tmp_path / "strip.png")
    assert preview.shape == (64, 64, 3) and preview.dtype == np.uint8
    assert loading.source_preview(tmp_path / "notes.jpg") is None
