"""Fetching cohorts from a loopback server (127.0.0.1, started here) that serves the real fixture
files laid out like PhysioNet's and NSRR's trees: listing, checksums, resuming a broken transfer,
a corrupted file, a wrong token, per-file failure isolation, and the token never shown."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from synthsleepnet import read_recording, read_scoring
from synthsleepnet._validation import FetchError
from synthsleepnet.cli import main
from synthsleepnet.fetch import fetch, list_files, read_token

TOKEN = "s3cret-t0ken-123"
NSRR_XML = """<?xml version="1.0"?><PSGAnnotation><ScoredEvents>
<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>Wake|0</EventConcept><Start>0</Start><Duration>300</Duration></ScoredEvent>
</ScoredEvents></PSGAnnotation>"""


class _Server(ThreadingHTTPServer):
    root: Path
    requests_seen: list[tuple[str, str | None]]
    break_once: set[str]  # paths whose first transfer stops half-way


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        url = urlparse(self.path)
        self.server.requests_seen.append((url.path, self.headers.get("Range")))
        if url.path.startswith("/api/v1/datasets/"):
            return self._listing(url.path.split("/")[4], parse_qs(url.query).get("path", [""])[0])
        if "/files/a/" in url.path:  # NSRR download: /datasets/<slug>/files/a/<token>/m/<client>/<path>
            parts = url.path.split("/")
            if parts[5] != TOKEN:  # sleepdata.org sends a token without access to its files page
                return self._send(200, b"<html>files of shhs</html>", "text/html")
            return self._file(self.server.root / "nsrr" / parts[2] / "/".join(parts[8:]))
        return self._file(self.server.root / "physionet" / url.path.lstrip("/"))

    def _listing(self, slug: str, folder: str) -> None:
        base = self.server.root / "nsrr" / slug / folder
        items = [{"file_name": p.name, "full_path": f"{folder}/{p.name}", "is_file": p.is_file(),
                  "file_size": p.stat().st_size if p.is_file() else None,
                  "file_checksum_md5": hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else None}
                 for p in sorted(base.iterdir())] if base.is_dir() else []
        self._send(200, json.dumps(items).encode(), "application/json")

    def _file(self, path: Path) -> None:
        if not path.is_file():
            return self._send(404, b"not found", "text/plain")
        data = path.read_bytes()
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                return self._send(416, b"", "text/plain")
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        key = str(path)
        if key in self.server.break_once:  # send half, then drop the connection
            self.server.break_once.discard(key)
            self.wfile.write(data[start:start + (len(data) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data[start:])

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server(real_data: Path, tmp_path: Path) -> Iterator[_Server]:
    """PhysioNet's Sleep-EDF and HMC trees and an NSRR SHHS tree, from the real fixture files."""
    root = tmp_path / "server"
    cassette = root / "physionet" / "files" / "sleep-edfx" / "1.0.0" / "sleep-cassette"
    cassette.mkdir(parents=True)
    hypnograms = real_data / "sleep-edf" / "hypnograms"
    for psg, hyp in (("SC4001E0", "SC4001EC"), ("SC4011E0", "SC4011EH"), ("SC4021E0", "SC4021EH")):
        shutil.copy(real_data / "sleep-edf" / "short_psg.edf", cassette / f"{psg}-PSG.edf")
        shutil.copy(hypnograms / f"{hyp}-Hypnogram.edf", cassette / f"{hyp}-Hypnogram.edf")
    release = cassette.parent
    (release / "SHA256SUMS.txt").write_text("".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.relative_to(release)}\n"
        for p in sorted(release.rglob("*.edf"))) + f"{'0' * 64} RECORDS\n")
    shhs = root / "nsrr" / "shhs" / "polysomnography"
    (shhs / "edfs" / "shhs1").mkdir(parents=True)
    (shhs / "annotations-events-nsrr" / "shhs1").mkdir(parents=True)
    for n in ("200001", "200002"):
        shutil.copy(real_data / "sleep-edf" / "short_psg.edf", shhs / "edfs" / "shhs1" / f"shhs1-{n}.edf")
        (shhs / "annotations-events-nsrr" / "shhs1" / f"shhs1-{n}-nsrr.xml").write_text(NSRR_XML)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.root, httpd.requests_seen, httpd.break_once = root, [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_physionet_subset_is_listed_downloaded_verified_and_readable(server: _Server, tmp_path: Path) -> None:
    files = list_files("sleep-edf-sc", mirror=_url(server), limit=2)
    assert [f.path for f in files] == ["sleep-cassette/SC4001E0-PSG.edf", "sleep-cassette/SC4001EC-Hypnogram.edf",
                                       "sleep-cassette/SC4011E0-PSG.edf", "sleep-cassette/SC4011EH-Hypnogram.edf"]
    summary = fetch("sleep-edf-sc", tmp_path / "data", mirror=_url(server), subjects=["02"], progress=False)
    assert summary.ok and summary.downloaded == ["sleep-cassette/SC4021E0-PSG.edf",
                                                 "sleep-cassette/SC4021EH-Hypnogram.edf"]
    folder = tmp_path / "data" / "sleep-edf-sc" / "sleep-cassette"
    assert read_recording(folder / "SC4021E0-PSG.edf").duration_s == 300
    assert read_scoring(folder / "SC4021EH-Hypnogram.edf").n_epochs > 900
    assert not list(folder.glob("*.part"))
    again = fetch("sleep-edf-sc", tmp_path / "data", mirror=_url(server), subjects=["02"], progress=False)
    assert again.downloaded == [] and len(again.present) == 2  # verified, not downloaded twice


def test_an_interrupted_transfer_resumes_with_a_range_request(server: _Server, tmp_path: Path) -> None:
    target = server.root / "physionet" / "files" / "sleep-edfx" / "1.0.0" / "sleep-cassette" / "SC4001E0-PSG.edf"
    server.break_once.add(str(target))
    summary = fetch("sleep-edf-sc", tmp_path, mirror=_url(server), subjects=["00"], backoff_s=0.01, progress=False)
    assert summary.ok
    got = tmp_path / "sleep-edf-sc" / "sleep-cassette" / "SC4001E0-PSG.edf"
    assert got.read_bytes() == target.read_bytes()
    ranges = [r for p, r in server.requests_seen if p.endswith("SC4001E0-PSG.edf")]
    assert ranges[0] is None and len(ranges) == 2
    resumed_from = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= target.stat().st_size // 2  # from what had arrived, not from the start


def test_a_corrupted_file_fails_its_checksum_and_the_others_still_arrive(server: _Server, tmp_path: Path) -> None:
    bad = server.root / "physionet" / "files" / "sleep-edfx" / "1.0.0" / "sleep-cassette" / "SC4011E0-PSG.edf"
    data = bytearray(bad.read_bytes())
    data[5000] ^= 0xFF  # one flipped byte after the checksums were published
    bad.write_bytes(bytes(data))
    summary = fetch("sleep-edf-sc", tmp_path, mirror=_url(server), limit=2, progress=False)
    assert list(summary.failed) == ["sleep-cassette/SC4011E0-PSG.edf"]
    assert "does not match its published checksum" in summary.failed["sleep-cassette/SC4011E0-PSG.edf"]
    assert len(summary.downloaded) == 3
    folder = tmp_path / "sleep-edf-sc" / "sleep-cassette"
    assert not (folder / "SC4011E0-PSG.edf").exists() and not (folder / "SC4011E0-PSG.edf.part").exists()


def test_nsrr_with_a_token_and_with_a_wrong_one(server: _Server, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    summary = fetch("shhs", tmp_path, token=TOKEN, mirror=_url(server), progress=False)
    assert summary.ok and len(summary.downloaded) == 4
    night = tmp_path / "shhs" / "polysomnography"
    assert read_scoring(night / "annotations-events-nsrr" / "shhs1" / "shhs1-200001-nsrr.xml").n_epochs == 10
    wrong = fetch("shhs", tmp_path / "wrong", token="not-" + TOKEN, mirror=_url(server), progress=False)
    assert len(wrong.failed) == 4 and all("no access" in why for why in wrong.failed.values())
    assert not list((tmp_path / "wrong").rglob("*.edf"))
    with pytest.raises(FetchError, match="set NSRR_TOKEN"):
        list_files("shhs", token=None, mirror=_url(server))
    # the token reaches the server but never the user's screen or log
    monkeypatch.setenv("NSRR_TOKEN", "not-" + TOKEN)
    assert main(["fetch", "shhs", "--out", str(tmp_path / "cli"), "--mirror", _url(server), "--quiet",
                 "--limit", "1"]) == 1
    shown = capsys.readouterr().out + caplog.text
    assert "FAILED" in shown and TOKEN not in shown


def test_the_token_comes_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSRR_TOKEN", "from-env")
    assert read_token() == "from-env"
    (tmp_path / "token").write_text("from-file\n")
    assert read_token(tmp_path / "token") == "from-file"
    (tmp_path / "empty").write_text("")
    with pytest.raises(FetchError, match="is empty"):
        read_token(tmp_path / "empty")


def test_unknown_subjects_and_missing_servers_are_clear(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"no files for subject\(s\) \['99'\]"):
        list_files("sleep-edf-sc", mirror=_url(server), subjects=["99"])
    with pytest.raises(FetchError, match="not found on the server"):
        list_files("hmc", mirror=_url(server))  # no HMC tree on this server
    with pytest.raises(FetchError, match="after 2 attempts"):
        list_files("hmc", mirror="http://127.0.0.1:9", retries=1, backoff_s=0.01)  # nothing listens there


def test_a_full_disk_is_reported_with_what_to_do(server: _Server, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import io

    import synthsleepnet.fetch as fetch_module

    class FullDisk(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_module, "open", lambda *a, **k: FullDisk(), raising=False)
    summary = fetch("sleep-edf-sc", tmp_path, mirror=_url(server), subjects=["00"], progress=False)
    assert len(summary.failed) == 2
    assert all("the disk is full" in why and "resumes" in why for why in summary.failed.values())
