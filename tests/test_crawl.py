"""The crawler, offline: a fake search backend and a local HTTP server stand in for the web."""

from __future__ import annotations

import argparse
import csv
import functools
import http.server
import io
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from commands import crawl as crawl_module
from commands import crawl as crawl_command
from commands.crawl import FetchError, crawl, http_fetch
from gan_helpers.errors import UserError


def png_bytes(colour: tuple[int, int, int], size: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 80), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/slow.png":
            time.sleep(1.0)
        super().do_GET()

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A web server on 127.0.0.1 serving a few images, a web page, a big file and a slow one."""
    root = tmp_path_factory.mktemp("site")
    (root / "red.png").write_bytes(png_bytes((200, 30, 30)))
    (root / "green.jpg").write_bytes(jpeg_bytes((30, 200, 30)))
    (root / "blue-no-extension").write_bytes(png_bytes((30, 30, 200)))
    (root / "red-again.png").write_bytes(png_bytes((200, 30, 30)))  # same bytes as red.png
    (root / "page.html").write_text("<html><body>not an image</body></html>")
    (root / "huge.png").write_bytes(png_bytes((10, 10, 10), size=1200) + bytes(300_000))
    (root / "slow.png").write_bytes(png_bytes((1, 2, 3)))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fake_search(results):
    calls = []

    def search(query: str, max_results: int) -> list[dict]:
        calls.append((query, max_results))
        return results

    search.calls = calls
    return search


def fetch_small(url: str) -> bytes:
    return http_fetch(url, timeout=0.5, max_bytes=200_000)


def read_sources(dst: Path) -> list[dict[str, str]]:
    with (dst / "sources.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_downloads_images_and_records_every_address(server, tmp_path):
    names = ["red.png", "green.jpg", "blue-no-extension", "red-again.png", "page.html", "huge.png",
             "missing.png", "slow.png"]
    results = [{"image": f"{server}/{n}", "url": f"{server}/about-{n}", "title": f"photo {n}"} for n in names]
    results.append({"image": "file:///etc/passwd", "url": "", "title": "local file"})
    search = fake_search(results)
    pauses = []
    summary = crawl("red things", tmp_path / "dst", max_images=20, search=search, fetch=fetch_small,
                    delay=0.25, sleep=pauses.append, progress=False)
    assert search.calls == [("red things", 20)]
    rows = {row["image_url"].rsplit("/", 1)[-1]: row for row in read_sources(tmp_path / "dst")}
    assert rows["red.png"]["status"] == "saved" and rows["red.png"]["page_url"].endswith("about-red.png")
    assert rows["green.jpg"]["file"].endswith(".jpg")
    assert rows["blue-no-extension"]["file"].endswith(".png")  # the extension comes from the content
    assert rows["red-again.png"]["status"] == "skipped: same image as an earlier download"
    assert rows["page.html"]["status"] == "skipped: not an image"
    assert rows["huge.png"]["status"].startswith("skipped: larger than")
    assert rows["missing.png"]["status"] == "skipped: HTTP 404"
    assert rows["slow.png"]["status"].startswith("skipped: network error")  # timed out
    assert rows["passwd"]["status"] == "skipped: not an http(s) address"
    assert summary.saved == 3
    saved = sorted(p.name for p in (tmp_path / "dst").iterdir() if p.name != "sources.csv")
    assert saved == sorted(row["file"] for row in rows.values() if row["status"] == "saved")
    with Image.open(tmp_path / "dst" / rows["green.jpg"]["file"]) as image:
        assert image.format == "JPEG"
    assert pauses == [0.25] * (len(results) - 1)  # a pause between every two downloads


def test_rerun_skips_addresses_already_tried(server, tmp_path):
    first = [{"image": f"{server}/red.png", "url": "", "title": ""}]
    crawl("q", tmp_path, search=fake_search(first), fetch=fetch_small, sleep=lambda s: None, progress=False)
    fetched = []

    def counting_fetch(url: str) -> bytes:
        fetched.append(url)
        return fetch_small(url)

    more = first + [{"image": f"{server}/green.jpg", "url": "", "title": ""}]
    summary = crawl("q", tmp_path, search=fake_search(more), fetch=counting_fetch, sleep=lambda s: None,
                    progress=False)
    assert fetched == [f"{server}/green.jpg"]
    assert summary.saved == 1
    assert [row["status"] for row in read_sources(tmp_path)] == ["saved", "saved"]
    assert len({row["file"] for row in read_sources(tmp_path)}) == 2  # numbering continues, nothing overwritten


def test_search_failure_is_one_clear_sentence(monkeypatch, tmp_path):
    class BrokenDDGS:
        def images(self, query, max_results):
            raise ConnectionError("Name or service not known")

    import ddgs

    monkeypatch.setattr(ddgs, "DDGS", BrokenDDGS)
    with pytest.raises(UserError, match="internet connection") as error:
        crawl("cake", tmp_path, progress=False)  # the real ddgs_search, with ddgs's client replaced
    assert "\n" not in str(error.value)


def test_nothing_downloadable_is_a_user_error(server, tmp_path):
    results = [{"image": f"{server}/missing-{i}.png", "url": "", "title": ""} for i in range(3)]
    with pytest.raises(UserError, match=r"None of the 3 images .* HTTP 404"):
        crawl("q", tmp_path, search=fake_search(results), fetch=fetch_small, sleep=lambda s: None, progress=False)
    with pytest.raises(UserError, match="found nothing"):
        crawl("q", tmp_path / "b", search=fake_search([]), fetch=fetch_small, progress=False)


def test_unreachable_server_is_reported_per_address():
    with pytest.raises(FetchError, match="network error"):
        http_fetch("http://127.0.0.1:9/nothing.png", timeout=0.5)  # port 9: nobody listens


def test_cli_arguments_reach_the_fetcher(server, tmp_path, monkeypatch, capsys):
    results = [{"image": f"{server}/huge.png", "url": "", "title": ""},
               {"image": f"{server}/red.png", "url": "", "title": ""}]
    original = crawl_module.crawl
    monkeypatch.setattr(crawl_module, "crawl",
                        lambda *a, **k: original(*a, search=fake_search(results), progress=False, **k))
    parser = argparse.ArgumentParser()
    crawl_command.add_arguments(parser)
    args = parser.parse_args(["red", str(tmp_path / "out"), "--max", "5", "--delay", "0", "--max-kb", "100"])
    assert crawl_command.run(args) == 0
    statuses = {row["image_url"].rsplit("/", 1)[-1]: row["status"] for row in read_sources(tmp_path / "out")}
    assert statuses == {"huge.png": "skipped: larger than 100 KB", "red.png": "saved"}
    assert "Saved 1 new images" in capsys.readouterr().out


def test_cli_paths_mean_the_current_folder(server, tmp_path, monkeypatch, capsys):
    results = [{"image": f"{server}/red.png", "url": "", "title": ""}]
    original = crawl_module.crawl
    monkeypatch.setattr(crawl_module, "crawl",
                        lambda *a, **k: original(*a, search=fake_search(results), progress=False, **k))
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    crawl_command.add_arguments(parser)
    assert crawl_command.run(parser.parse_args(["red", "cakes", "--delay", "0"])) == 0
    assert (tmp_path / "cakes" / "sources.csv").is_file()
    # train reads --data relative to the project, so the hint names the folder in full
    assert f"--data {tmp_path / 'cakes'}" in capsys.readouterr().out


def test_a_crafted_sources_csv_names_nothing_outside(server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "sources.csv").write_text("file,image_url,page_url,title,status\n"
                                     "../secret.txt,http://x/a.png,,,saved\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"sources.csv line 2 names file '\.\./secret.txt'"):
        crawl("q", dst, search=fake_search([{"image": f"{server}/red.png"}]), fetch=fetch_small,
              sleep=lambda s: None, progress=False)


def test_sources_csv_is_written_whole_or_not_at_all(server, tmp_path, monkeypatch):
    first = [{"image": f"{server}/red.png", "url": "", "title": ""}]
    crawl("q", tmp_path, search=fake_search(first), fetch=fetch_small, sleep=lambda s: None, progress=False)
    before = (tmp_path / "sources.csv").read_bytes()

    class Failing(csv.DictWriter):
        def writerows(self, rows):
            raise KeyboardInterrupt  # interrupted after the header

    monkeypatch.setattr(csv, "DictWriter", Failing)
    more = first + [{"image": f"{server}/green.jpg", "url": "", "title": ""}]
    with pytest.raises(KeyboardInterrupt):
        crawl("q", tmp_path, search=fake_search(more), fetch=fetch_small, sleep=lambda s: None, progress=False)
    assert (tmp_path / "sources.csv").read_bytes() == before
