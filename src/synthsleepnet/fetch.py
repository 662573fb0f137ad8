"""Fetch public and NSRR cohorts: listed, resumable, verified, atomic per file.

Two kinds of server, one client (``requests``):

- **PhysioNet** open data (Sleep-EDF Expanded SC and ST, HMC): the file list and SHA-256 sums
  come from the release's ``SHA256SUMS.txt``; files from ``/files/<slug>/<version>/<path>``.
- **NSRR** (SHHS, MESA, MrOS, CFS, CHAT) through sleepdata.org's token-authenticated API: the
  list, sizes and MD5 sums from ``/api/v1/datasets/<slug>/files.json?path=…``, files from
  ``/datasets/<slug>/files/a/<token>/m/synthsleepnet/<path>``. The token comes from the
  ``NSRR_TOKEN`` environment variable or a file; it is never printed, logged or written into
  an error message (every URL in a message is redacted).

Each file is downloaded to ``<path>.part``, resumed with an HTTP range request when a part is
already there, checked against its checksum (or size), and renamed into place only when it
matches, so a file in the output folder is always complete. Network errors and 5xx answers are
retried with exponential backoff; 401/403/404, a checksum that does not match twice and a full
disk are reported per file with what to do, and the other files go on.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from tqdm.auto import tqdm

from ._logging import logger, verbose
from ._validation import FetchError, check_int, check_option

__all__ = ["DATASETS", "FetchError", "FetchSummary", "RemoteDataset", "RemoteFile", "fetch", "list_files",
           "read_token"]

PHYSIONET_URL = "https://physionet.org"
NSRR_URL = "https://sleepdata.org"
_CHUNK = 1 << 16  # what a broken transfer loses at most
_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class RemoteDataset:
    """Where a cohort lives and which of its files make a night.

    ``folders`` are listed (NSRR: recursively); a file is kept when its name matches
    ``pattern``; ``subject`` (a regex with one group) gives the subject of a file, for
    ``subjects`` and ``limit``.
    """

    name: str
    source: str  # "physionet" or "nsrr"
    slug: str
    folders: tuple[str, ...]
    pattern: str
    subject: str
    version: str = ""
    description: str = ""

    def subject_of(self, path: str) -> str | None:
        match = re.search(self.subject, path.rsplit("/", 1)[-1])
        return match.group(1) if match else None


_EDF_OR_NSRR_XML = r".*\.(edf|EDF)$|.*-nsrr\.xml$"
DATASETS: dict[str, RemoteDataset] = {d.name: d for d in (
    RemoteDataset("sleep-edf-sc", "physionet", "sleep-edfx", ("sleep-cassette/",),
                  r"SC4\d{3}[A-Z]\d-PSG\.edf$|SC4\d{3}[A-Z]{2}-Hypnogram\.edf$", r"SC4(\d\d)", "1.0.0",
                  "Sleep-EDF Expanded, Sleep Cassette: 153 nights of 78 healthy subjects (R&K hypnograms)"),
    RemoteDataset("sleep-edf-st", "physionet", "sleep-edfx", ("sleep-telemetry/",),
                  r"ST7\d{3}[A-Z]\d-PSG\.edf$|ST7\d{3}[A-Z]{2}-Hypnogram\.edf$", r"ST7(\d\d)", "1.0.0",
                  "Sleep-EDF Expanded, Sleep Telemetry: 44 nights of 22 subjects in a temazepam study"),
    RemoteDataset("hmc", "physionet", "hmc-sleep-staging", ("recordings/",), r"SN\d{3}(_sleepscoring)?\.edf$",
                  r"SN(\d{3})", "1.1", "Haaglanden Medisch Centrum sleep staging: 151 clinical PSGs (AASM)"),
    RemoteDataset("shhs", "nsrr", "shhs", ("polysomnography/edfs/shhs1/",
                                           "polysomnography/annotations-events-nsrr/shhs1/"),
                  _EDF_OR_NSRR_XML, r"shhs\d-(\d+)", description="Sleep Heart Health Study, visit 1 (5,793 nights)"),
    RemoteDataset("mesa", "nsrr", "mesa", ("polysomnography/edfs/", "polysomnography/annotations-events-nsrr/"),
                  _EDF_OR_NSRR_XML, r"mesa-sleep-(\d+)", description="Multi-Ethnic Study of Atherosclerosis sleep"),
    RemoteDataset("mros", "nsrr", "mros", ("polysomnography/edfs/visit1/",
                                           "polysomnography/annotations-events-nsrr/visit1/"),
                  _EDF_OR_NSRR_XML, r"mros-visit1-(\w+?)(?:-nsrr)?\.", description="MrOS Sleep Study, visit 1"),
    RemoteDataset("cfs", "nsrr", "cfs", ("polysomnography/edfs/", "polysomnography/annotations-events-nsrr/"),
                  _EDF_OR_NSRR_XML, r"cfs-visit5-(\d+)", description="Cleveland Family Study, visit 5"),
    RemoteDataset("chat", "nsrr", "chat", ("polysomnography/edfs/baseline/",
                                           "polysomnography/annotations-events-nsrr/baseline/"),
                  _EDF_OR_NSRR_XML, r"chat-baseline-(\d+)", description="Childhood Adenotonsillectomy Trial, baseline"),
)}


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its path in the dataset, its URL, and what verifies it."""

    path: str
    url: str
    size: int | None = None
    checksum: str | None = None
    algorithm: str | None = None  # "sha256" or "md5"


@dataclasses.dataclass
class FetchSummary:
    """What a fetch did: files downloaded, already there (verified), and failed (with why)."""

    out_dir: Path
    downloaded: list[str] = dataclasses.field(default_factory=list)
    present: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self) -> str:
        lines = [f"{self.out_dir}: {len(self.downloaded)} downloaded, {len(self.present)} already there, "
                 f"{len(self.failed)} failed"]
        return "\n".join(lines + [f"  FAILED {path}: {why}" for path, why in self.failed.items()])


def read_token(token_file: str | Path | None = None) -> str | None:
    """The NSRR download token: ``token_file`` when given, else ``$NSRR_TOKEN``, else None."""
    if token_file is not None:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise FetchError(f"cannot read the NSRR token file {path} ({err.strerror})") from None
        if not token:
            raise FetchError(f"the NSRR token file {path} is empty; get a token at https://sleepdata.org/token")
        return token
    return os.environ.get("NSRR_TOKEN") or None


class _Client:
    """One HTTP session with the retry policy and token redaction every request shares."""

    def __init__(self, token: str | None, retries: int, backoff_s: float, timeout_s: float) -> None:
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "synthsleepnet-fetch"
        self.token, self.retries, self.backoff_s, self.timeout_s = token, retries, backoff_s, timeout_s

    def redact(self, text: str) -> str:
        return text.replace(self.token, "<token>") if self.token else text

    def get(self, url: str, *, what: str, headers: dict[str, str] | None = None, stream: bool = False,
            params: dict[str, str] | None = None, allow: tuple[int, ...] = ()) -> requests.Response:
        """GET with retries on connection errors, timeouts and 5xx; raises FetchError for other
        errors than those in ``allow``."""
        for attempt in range(self.retries + 1):
            try:
                response = self.session.get(url, headers=headers, stream=stream, params=params,
                                            timeout=self.timeout_s, allow_redirects=True)
            except (requests.ConnectionError, requests.Timeout) as err:
                problem = f"{type(err).__name__}: {self.redact(str(err))}"
            else:
                if response.status_code < 500:
                    if response.status_code not in allow:
                        _raise_for_status(response, what)
                    return response
                problem = f"HTTP {response.status_code}"
                response.close()
            if attempt < self.retries:
                wait = self.backoff_s * 2 ** attempt
                logger.info("%s: %s; retrying in %.1f s", what, problem, wait)
                time.sleep(wait)
        raise FetchError(f"{what}: {problem} after {self.retries + 1} attempts; the server may be down, "
                         "try again later (finished files are kept, partial ones resume)")


def _raise_for_status(response: requests.Response, what: str) -> None:
    status = response.status_code
    if status in (401, 403):
        raise FetchError(f"{what}: access denied (HTTP {status}); for NSRR cohorts check that NSRR_TOKEN (or "
                         "--token-file) holds your current token from https://sleepdata.org/token and that your "
                         "data request for this dataset is approved")
    if status == 404:
        raise FetchError(f"{what}: not found on the server (HTTP 404); the dataset layout or version may have "
                         "changed, or --mirror points elsewhere")
    if status >= 400:
        raise FetchError(f"{what}: HTTP {status}")


def list_files(dataset: str | RemoteDataset, *, token: str | None = None, mirror: str | None = None,
               subjects: Sequence[str] | None = None, limit: int | None = None, retries: int = 3,
               backoff_s: float = 1.0) -> list[RemoteFile]:
    """The files of ``dataset`` (recordings and scorings), optionally of some subjects only.

    ``limit`` keeps the first ``limit`` subjects in sorted order; ``subjects`` keeps those named
    (as the dataset's file names write them: ``00`` for SC4001, ``200001`` for shhs1-200001).
    """
    spec = DATASETS[check_option("dataset", dataset, DATASETS)] if isinstance(dataset, str) else dataset
    client = _Client(token, retries, backoff_s, _TIMEOUT_S)
    files = _list_physionet(spec, client, mirror) if spec.source == "physionet" else _list_nsrr(spec, client, mirror)
    files = [f for f in files if re.search(spec.pattern, f.path.rsplit("/", 1)[-1])]
    by_subject: dict[str, list[RemoteFile]] = {}
    for f in files:
        by_subject.setdefault(spec.subject_of(f.path) or "", []).append(f)
    chosen = sorted(by_subject)
    if subjects is not None:
        unknown = sorted(set(subjects) - set(by_subject))
        if unknown:
            raise FetchError(f"{spec.name}: no files for subject(s) {unknown[:10]}; subjects look like "
                             f"{chosen[:5]}")
        chosen = [s for s in chosen if s in set(subjects)]
    if limit is not None:
        chosen = chosen[:check_int("limit", limit, 1, 10**7)]
    return [f for s in chosen for f in sorted(by_subject[s], key=lambda f: f.path)]


def _list_physionet(spec: RemoteDataset, client: _Client, mirror: str | None) -> list[RemoteFile]:
    base = f"{(mirror or PHYSIONET_URL).rstrip('/')}/files/{spec.slug}/{spec.version}/"
    text = client.get(base + "SHA256SUMS.txt", what=f"{spec.name}: the file list (SHA256SUMS.txt)").text
    out = []
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and any(parts[1].startswith(folder) for folder in spec.folders):
            path = parts[1].lstrip("*")
            out.append(RemoteFile(path, base + path, None, parts[0].lower(), "sha256"))
    return out


def _list_nsrr(spec: RemoteDataset, client: _Client, mirror: str | None) -> list[RemoteFile]:
    if not client.token:
        raise FetchError(f"{spec.name} is an NSRR dataset: set NSRR_TOKEN (or pass --token-file) to your download "
                         "token from https://sleepdata.org/token, after your data request is approved")
    root = (mirror or NSRR_URL).rstrip("/")
    download = f"{root}/datasets/{spec.slug}/files/a/{client.token}/m/synthsleepnet/"
    out: list[RemoteFile] = []
    pending = list(spec.folders)
    while pending:
        folder = pending.pop()
        items = client.get(f"{root}/api/v1/datasets/{spec.slug}/files.json", what=f"{spec.name}: listing {folder}",
                           params={"path": folder.rstrip("/"), "auth_token": client.token}).json()
        if not isinstance(items, list):
            raise FetchError(f"{spec.name}: listing {folder} did not return a file list; is the dataset name right?")
        for item in items:
            if item.get("is_file"):
                path = str(item["full_path"])
                out.append(RemoteFile(path, download + path, _int_or_none(item.get("file_size")),
                                      item.get("file_checksum_md5") or None, "md5" if item.get("file_checksum_md5")
                                      else None))
            else:
                pending.append(str(item["full_path"]) + "/")
    return out


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, remote: RemoteFile) -> str | None:
    """None when ``path`` matches ``remote`` (checksum, else size), else what differs."""
    if remote.size is not None and path.stat().st_size != remote.size:
        return f"size {path.stat().st_size} bytes, expected {remote.size}"
    if remote.checksum and remote.algorithm:
        got = _digest(path, remote.algorithm)
        if got != remote.checksum:
            return f"{remote.algorithm} {got}, expected {remote.checksum}"
    return None


def _download(client: _Client, remote: RemoteFile, target: Path, advance: Callable[[int], object]) -> bool:
    """Fetch one file into place; True if downloaded, False if already there and verified."""
    if target.exists() and _verified(target, remote) is None:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for fresh in (False, True):  # a resumed part can hide a bad byte: one more try from scratch
        if fresh:
            part.unlink(missing_ok=True)
        _receive(client, remote, part, advance)
        problem = _verified(part, remote)
        if problem is None:
            os.replace(part, target)
            return True
        logger.warning("%s: %s%s", remote.path, problem, "" if fresh else "; downloading it again from the start")
    part.unlink(missing_ok=True)
    raise FetchError(f"{remote.path}: the download does not match its published checksum ({problem}) twice; "
                     "the server's copy or the network may be corrupt; nothing was kept")


def _receive(client: _Client, remote: RemoteFile, part: Path, advance: Callable[[int], object]) -> None:
    """Append the rest of ``remote`` to ``part`` (from its current size), retrying a broken
    stream from where it stopped."""
    for attempt in range(client.retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if remote.size is not None and have >= remote.size:
            return
        headers = {"Range": f"bytes={have}-"} if have else None
        response = client.get(remote.url, what=remote.path, headers=headers, stream=True, allow=(416,))
        if response.status_code == 416:  # the part already holds every byte (size not published)
            response.close()
            return
        if "text/html" in response.headers.get("Content-Type", "") and not remote.path.endswith((".html", ".htm")):
            response.close()  # NSRR answers a token without access with its files page
            raise FetchError(f"{remote.path}: the server sent a web page instead of the file; the token has no "
                             "access to this dataset (check your NSRR data request)")
        mode = "ab" if have and response.status_code == 206 else "wb"  # 200: the server ignored the range
        try:
            with response, open(part, mode) as f:
                for block in response.iter_content(_CHUNK):
                    f.write(block)
                    advance(len(block))
                f.flush()
                os.fsync(f.fileno())
            return
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout) as err:
            logger.info("%s: the transfer broke (%s); resuming", remote.path, type(err).__name__)
            time.sleep(client.backoff_s * 2 ** attempt)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise FetchError(f"{remote.path}: the disk is full at {part.parent}; free space (the partial file "
                                 "is kept and resumes) or choose another --out") from None
            raise
    raise FetchError(f"{remote.path}: the transfer broke {client.retries + 1} times; run fetch again to resume")


@verbose
def fetch(
    dataset: str,
    out_dir: str | Path,
    *,
    subjects: Sequence[str] | None = None,
    limit: int | None = None,
    token: str | None = None,
    mirror: str | None = None,
    workers: int = 4,
    retries: int = 3,
    backoff_s: float = 1.0,
    progress: bool = True,
    verbose: bool | str | int | None = None,
) -> FetchSummary:
    """Download a cohort's recordings and scorings into ``out_dir/<dataset>/`` (server layout).

    Parameters
    ----------
    dataset : str
        One of :data:`DATASETS` (``sleep-edf-sc``, ``sleep-edf-st``, ``hmc``, ``shhs``, ``mesa``,
        ``mros``, ``cfs``, ``chat``).
    subjects, limit
        Only these subjects / the first ``limit`` subjects (see :func:`list_files`).
    token : str | None
        NSRR download token (default: :func:`read_token`).
    mirror : str | None
        Another server with the same layout (an institutional mirror; the tests' loopback server).
    workers : int
        Files downloaded in parallel.

    Files already there and verified are kept; partial files resume. A file that fails is
    reported in the summary and the others go on.
    """
    spec = DATASETS[check_option("dataset", dataset, DATASETS)]
    token = token if token is not None else read_token()
    files = list_files(spec, token=token, mirror=mirror, subjects=subjects, limit=limit, retries=retries,
                       backoff_s=backoff_s)
    out = Path(out_dir) / spec.name
    summary = FetchSummary(out)
    client = _Client(token, retries, backoff_s, _TIMEOUT_S)
    known = [f.size for f in files]
    bar = tqdm(total=sum(s for s in known if s) if all(known) else None, unit="B", unit_scale=True,
               desc=f"fetch {spec.name} ({len(files)} files)", disable=not progress)

    def one(remote: RemoteFile) -> None:
        try:
            downloaded = _download(client, remote, out / remote.path, bar.update)
        except FetchError as err:
            summary.failed[remote.path] = client.redact(str(err))
            logger.error("%s", summary.failed[remote.path])
            return
        (summary.downloaded if downloaded else summary.present).append(remote.path)

    with bar, ThreadPoolExecutor(max_workers=check_int("workers", workers, 1, 64)) as pool:
        list(pool.map(one, files))
    summary.downloaded.sort()
    summary.present.sort()
    return summary
