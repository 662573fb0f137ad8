"""Write EDF/EDF+D/BDF files and byte-edit their headers: the fault matrix's raw material."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import edfio
import numpy as np

#: (field, width) of each per-signal header field, in file order (EDF specification).
SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("physical_dimension", 8), ("physical_min", 8),
                 ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefilter", 80),
                 ("samples_per_record", 8), ("reserved", 32))
#: (offset, width) of the fixed header fields.
FIXED_FIELDS = {"version": (0, 8), "patient": (8, 80), "recording": (88, 80), "startdate": (168, 8),
                "starttime": (176, 8), "header_bytes": (184, 8), "reserved": (192, 44), "n_records": (236, 8),
                "record_duration": (244, 8), "n_signals": (252, 4)}


def write_edf(path: Path, signals: dict[str, tuple[np.ndarray, float]], *, start: dt.datetime | None = None,
              annotations: list[tuple[float, float | None, str]] = (), bdf: bool = False, unit: str = "uV") -> Path:
    """A real EDF+ (or 24-bit BDF) file written by edfio."""
    start = start or dt.datetime(2020, 1, 1, 22, 0, 0)
    if bdf:
        bdf_signals = [edfio.BdfSignal(x, fs, label=k, physical_dimension=unit) for k, (x, fs) in signals.items()]
        edfio.Bdf(bdf_signals, recording=edfio.Recording(startdate=start.date()), starttime=start.time()).write(path)
        return path
    edf = edfio.Edf([edfio.EdfSignal(x, fs, label=k, physical_dimension=unit) for k, (x, fs) in signals.items()],
                    recording=edfio.Recording(startdate=start.date()), starttime=start.time(),
                    annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations])
    edf.write(path)
    return path


def n_signals(path: Path) -> int:
    return int(path.read_bytes()[252:256].decode().strip())


def set_field(path: Path, field: str, value: str, signal: int | None = None) -> Path:
    """Overwrite one header field (of one signal, 0-based) with ``value``, padded to its width."""
    raw = bytearray(path.read_bytes())
    if signal is None:
        offset, width = FIXED_FIELDS[field]
    else:
        ns = n_signals(path)
        offset = 256
        for name, w in SIGNAL_FIELDS:
            if name == field:
                offset += signal * w
                width = w
                break
            offset += w * ns
    raw[offset:offset + width] = value.encode("latin-1").ljust(width)[:width]
    path.write_bytes(bytes(raw))
    return path


def write_edf_plus_d(path: Path, signals: dict[str, tuple[np.ndarray, float]], record_onsets: list[float],
                     *, record_s: float = 1.0, start: dt.datetime | None = None,
                     annotations: list[tuple[float, float, str]] = ()) -> Path:
    """A discontinuous EDF+ (EDF+D) file: record ``k`` starts at ``record_onsets[k]`` seconds.

    ``signals`` hold the samples of the records back to back (gaps are not in the data);
    annotations are written into the first record's TAL block.
    """
    start = start or dt.datetime(2020, 1, 1, 22, 0, 0)
    n_records = len(record_onsets)
    spr = {k: int(round(fs * record_s)) for k, (_, fs) in signals.items()}
    tal_records = []
    for r, onset in enumerate(record_onsets):
        tal = f"+{onset:g}\x14\x14\x00".encode()
        if r == 0:
            tal += b"".join(f"+{o:g}\x15{d:g}\x14{t}\x14\x00".encode() for o, d, t in annotations)
        tal_records.append(tal)
    ann_bytes = max(len(t) for t in tal_records)
    ann_bytes += ann_bytes % 2
    labels = [*signals, "EDF Annotations"]
    ns = len(labels)
    header = bytearray()

    def field(text: str, width: int) -> None:
        header.extend(text.encode("latin-1").ljust(width)[:width])

    field("0", 8)
    field("X X X X", 80)
    field(f"Startdate {start:%d}-{start:%b}-{start:%Y}".upper().replace("STARTDATE", "Startdate") + " X X X", 80)
    field(f"{start:%d.%m.%y}", 8)
    field(f"{start:%H.%M.%S}", 8)
    field(str(256 * (ns + 1)), 8)
    field("EDF+D", 44)
    field(str(n_records), 8)
    field(f"{record_s:g}", 8)
    field(str(ns), 4)
    for label in labels:
        field(label, 16)
    for _ in labels:
        field("", 80)
    for label in labels:
        field("" if label == "EDF Annotations" else "uV", 8)
    for label in labels:
        field("-1" if label == "EDF Annotations" else "-3276.8", 8)
    for label in labels:
        field("1" if label == "EDF Annotations" else "3276.7", 8)
    for _ in labels:
        field("-32768", 8)
    for _ in labels:
        field("32767", 8)
    for _ in labels:
        field("", 80)
    for label in labels:
        field(str(ann_bytes // 2 if label == "EDF Annotations" else spr[label]), 8)
    for _ in labels:
        field("", 32)
    data = bytearray()
    for r in range(n_records):
        for label, (x, _) in signals.items():
            chunk = x[r * spr[label]:(r + 1) * spr[label]]
            data.extend(np.round(chunk / 0.1).astype("<i2").tobytes())
        data.extend(tal_records[r].ljust(ann_bytes, b"\x00"))
    path.write_bytes(bytes(header) + bytes(data))
    return path


def empty_signal(path: Path, signal: int) -> Path:
    """Rewrite ``path`` so that ``signal`` has 0 samples per record (its bytes removed from
    every record): a consistent file whose header declares an empty channel."""
    raw = path.read_bytes()
    ns = n_signals(path)
    header_bytes = 256 * (ns + 1)
    offset = 256 + sum(w for name, w in SIGNAL_FIELDS[:SIGNAL_FIELDS.index(("samples_per_record", 8))]) * ns
    spr = [int(raw[offset + i * 8:offset + (i + 1) * 8].decode().strip()) for i in range(ns)]
    record = sum(spr) * 2
    n_records = (len(raw) - header_bytes) // record
    start = sum(spr[:signal]) * 2
    data = b"".join(raw[header_bytes + r * record:header_bytes + (r + 1) * record][:start]
                    + raw[header_bytes + r * record:header_bytes + (r + 1) * record][start + spr[signal] * 2:]
                    for r in range(n_records))
    path.write_bytes(raw[:header_bytes] + data)
    return set_field(path, "samples_per_record", "0", signal=signal)
