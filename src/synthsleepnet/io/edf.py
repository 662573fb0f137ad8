"""EDF, EDF+ and BDF, read leniently and checked field by field, one channel at a time.

Every header field is parsed and checked with a message naming the file, the field, the signal
and the raw value. Faults that can be repaired are repaired and said (``notes``): a truncated
last record is dropped, a record count that disagrees with the file size is corrected, a start
date that cannot be parsed becomes "unknown" (never silently "anonymised"), duplicate labels get
a ``#2`` suffix. Faults that make one channel meaningless (physical minimum equal to maximum,
digital minimum above maximum, no samples per record) mark that channel unusable with the
reason; faults that make the file meaningless (record duration not a positive number, a header
shorter than its signals) are refused.

Signals are read one at a time, in blocks of records with ``os.pread``: reading a channel costs
memory for that channel only, whatever the size of the file, and listing channels reads the
header only. EDF+D (discontinuous) files place each record at its own onset (the time-keeping
annotation); the gaps between records are returned as NaN and listed.

References: Kemp et al., EDF (1992) and EDF+ (2003) specifications; BioSemi BDF (24-bit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._validation import PSGReadError

__all__ = ["MAX_RECORDING_S", "EdfChannel", "EdfFile", "EdfHeader", "TimedText"]

#: Longest recording accepted (7 days): no number read from a file may size an array beyond it.
MAX_RECORDING_S = 7 * 24 * 3600.0
_MAX_SFREQ = 100_000.0
_BLOCK_BYTES = 16 * 1024 * 1024
_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                       "NOV", "DEC"), start=1)}
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("physical_dimension", 8), ("physical_min", 8),
                  ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefilter", 80),
                  ("samples_per_record", 8), ("reserved", 32))


@dataclasses.dataclass(frozen=True)
class EdfChannel:
    """One signal's header. ``problem`` says why the channel cannot be used, if it cannot."""

    index: int
    label: str
    transducer: str
    unit: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    prefilter: str
    samples_per_record: int
    problem: str | None = None

    @property
    def is_annotation(self) -> bool:
        return self.label in _ANNOTATION_LABELS

    @property
    def gain(self) -> float:
        return (self.physical_max - self.physical_min) / (self.digital_max - self.digital_min)


@dataclasses.dataclass(frozen=True)
class TimedText:
    """An EDF+ annotation: onset and duration in seconds, and its text."""

    onset_s: float
    duration_s: float
    text: str


@dataclasses.dataclass(frozen=True)
class EdfHeader:
    """A checked EDF/BDF header and what was repaired while reading it."""

    path: Path
    kind: str
    variant: str
    patient: str
    recording_id: str
    start: dt.datetime | None
    header_bytes: int
    n_records: int
    record_duration_s: float
    channels: tuple[EdfChannel, ...]
    notes: tuple[str, ...]

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.kind == "BDF" else 2

    @property
    def record_samples(self) -> int:
        return sum(c.samples_per_record for c in self.channels)

    @property
    def discontinuous(self) -> bool:
        return self.variant.endswith("+D")

    def sfreq(self, channel: EdfChannel) -> float:
        return channel.samples_per_record / self.record_duration_s if self.record_duration_s > 0 else 0.0


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


class _Fields:
    """Parses numeric header fields, naming the file, field and raw value in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def number(self, raw: bytes, field: str) -> float:
        text = _text(raw)
        try:
            value = float(text)
        except ValueError:
            raise PSGReadError(f"{self.path}: header field {field} is {text!r}, not a number") from None
        return value

    def integer(self, raw: bytes, field: str) -> int:
        value = self.number(raw, field)
        if not math.isfinite(value) or value != int(value):
            raise PSGReadError(f"{self.path}: header field {field} is {_text(raw)!r}, not a whole number")
        return int(value)


def _start(path: Path, date: str, time: str, recording_id: str, notes: list[str]) -> dt.datetime | None:
    """Start time from dd.mm.yy / hh.mm.ss (EDF+: the 4-digit year of 'Startdate dd-MMM-yyyy')."""
    match_date = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d)", date)
    match_time = re.fullmatch(r"(\d\d)[.:](\d\d)[.:](\d\d)", time)
    plus = re.match(r"Startdate (\d\d)-([A-Z]{3})-(\d{4})", recording_id)
    try:
        if plus and plus.group(2) in _MONTHS:
            day, month, year = int(plus.group(1)), _MONTHS[plus.group(2)], int(plus.group(3))
        elif match_date:
            day, month, yy = (int(g) for g in match_date.groups())
            year = 1900 + yy if yy >= 85 else 2000 + yy
        else:
            raise ValueError("not dd.mm.yy")
        if not match_time:
            raise ValueError("not hh.mm.ss")
        hour, minute, second = (int(g) for g in match_time.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError as err:
        if recording_id.startswith("Startdate X"):
            notes.append("start date anonymised (EDF+ 'Startdate X'): the scoring's start cannot be compared")
        else:
            notes.append(f"start date {date!r} and time {time!r} cannot be parsed ({err}); the start time is "
                         "unknown, so a scoring's start cannot be compared with it")
        return None


def _channel(index: int, raw: dict[str, bytes], fields: _Fields) -> EdfChannel:
    label = _text(raw["label"]) or f"channel {index + 1}"
    name = f"signal {index + 1} ({label!r})"
    problems = []
    values: dict[str, float] = {}
    for key in ("physical_min", "physical_max", "digital_min", "digital_max"):
        try:
            values[key] = fields.number(raw[key], f"{key.replace('_', ' ')} of {name}")
        except PSGReadError as err:
            problems.append(str(err).removeprefix(f"{fields.path}: "))
            values[key] = math.nan
    spr = fields.integer(raw["samples_per_record"], f"samples per record of {name}")
    if spr < 0:
        raise PSGReadError(f"{fields.path}: header field samples per record of {name} is {spr}, below zero")
    pmin, pmax, dmin, dmax = (values[k] for k in ("physical_min", "physical_max", "digital_min", "digital_max"))
    if spr == 0:
        problems.append("it has 0 samples per record")
    if not problems and pmin == pmax:
        problems.append(f"its physical minimum equals its maximum ({pmin:g}): the signal cannot be calibrated")
    if not problems and dmin >= dmax:
        problems.append(f"its digital minimum ({dmin:g}) is not below its maximum ({dmax:g}): the polarity and "
                        "scale cannot be trusted")
    if not problems and not all(math.isfinite(v) for v in (pmin, pmax)):
        problems.append(f"its physical range {pmin:g}..{pmax:g} is not finite")
    return EdfChannel(index, label, _text(raw["transducer"]), _text(raw["physical_dimension"]), pmin, pmax,
                      int(dmin) if math.isfinite(dmin) else 0, int(dmax) if math.isfinite(dmax) else 0,
                      _text(raw["prefilter"]), spr, "; ".join(problems) or None)


def _unique_labels(channels: list[EdfChannel], notes: list[str]) -> list[EdfChannel]:
    seen: dict[str, int] = {}
    out = []
    for ch in channels:
        count = seen.get(ch.label, 0) + 1
        seen[ch.label] = count
        if count > 1 and not ch.is_annotation:
            renamed = f"{ch.label}#{count}"
            notes.append(f"signal {ch.index + 1}: a second channel labelled {ch.label!r} is read as {renamed!r}")
            ch = dataclasses.replace(ch, label=renamed)
        out.append(ch)
    return out


def read_header(path: Path, *, strict: bool = False) -> EdfHeader:
    """Read and check an EDF/EDF+/BDF header (the data are not read).

    Raises
    ------
    PSGReadError
        Naming the file, the field and the value, for a header that cannot describe its data;
        with ``strict``, also for one that disagrees with the file's size.
    """
    size = path.stat().st_size
    fields = _Fields(path)
    with open(path, "rb") as f:
        fixed = f.read(256)
        if len(fixed) < 256:
            raise PSGReadError(f"{path}: not a readable EDF/BDF file: {len(fixed)} bytes is shorter than a header "
                               "(256 bytes)")
        version = fixed[:8]
        if version.startswith(b"\xffBIOSEMI"):
            kind = "BDF"
        elif _text(version) == "0":
            kind = "EDF"
        else:
            raise PSGReadError(f"{path}: not a readable EDF/BDF file: its version field is {version!r}, "
                               "not '0' (EDF) or '\\xffBIOSEMI' (BDF)")
        n_signals = fields.integer(fixed[252:256], "number of signals")
        if not 0 <= n_signals <= (size - 256) // 256:
            raise PSGReadError(f"{path}: header says {n_signals} signals, which do not fit a file of {size} bytes")
        block = f.read(256 * n_signals)
    notes: list[str] = []
    patient, recording_id = _text(fixed[8:88]), _text(fixed[88:168])
    reserved = _text(fixed[192:236])
    variant = next((v for v in ("EDF+C", "EDF+D", "BDF+C", "BDF+D") if reserved.startswith(v)), "")
    start = _start(path, _text(fixed[168:176]), _text(fixed[176:184]), recording_id, notes)
    header_bytes = fields.integer(fixed[184:192], "number of bytes in header")
    if header_bytes != 256 * (n_signals + 1):
        notes.append(f"header byte count {header_bytes} corrected to {256 * (n_signals + 1)} (256 × (1 + "
                     f"{n_signals} signals))")
        header_bytes = 256 * (n_signals + 1)
    n_records = fields.integer(fixed[236:244], "number of data records")
    duration = fields.number(fixed[244:252], "duration of a data record")
    raw_signals: list[dict[str, bytes]] = [{} for _ in range(n_signals)]
    offset = 0
    for name, width in _SIGNAL_FIELDS:
        for i in range(n_signals):
            raw_signals[i][name] = block[offset + i * width:offset + (i + 1) * width]
        offset += width * n_signals
    channels = _unique_labels([_channel(i, raw, fields) for i, raw in enumerate(raw_signals)], notes)
    has_data = any(not c.is_annotation and c.samples_per_record > 0 for c in channels)
    if not math.isfinite(duration) or duration < 0 or (duration == 0 and has_data):
        raise PSGReadError(f"{path}: header field duration of a data record is {_text(fixed[244:252])!r}; it must be "
                           "a positive number of seconds (0 only in annotation-only files)")
    for ch in channels:
        rate = ch.samples_per_record / duration if duration else 0.0
        if rate > _MAX_SFREQ:
            raise PSGReadError(f"{path}: signal {ch.index + 1} ({ch.label!r}) would be sampled at {rate:g} Hz "
                               f"({ch.samples_per_record} samples per {duration:g}-s record); above {_MAX_SFREQ:g} Hz")
    header = EdfHeader(path, kind, variant, patient, recording_id, start, header_bytes, n_records, duration,
                       tuple(channels), ())
    record_bytes = header.record_samples * header.bytes_per_sample
    available = (size - header_bytes) // record_bytes if record_bytes else 0
    leftover = (size - header_bytes) - available * record_bytes if record_bytes else 0
    if record_bytes and leftover:
        notes.append(f"incomplete last data record ({leftover} bytes) dropped: the file is truncated")
    if n_records != available:
        if n_records != -1:
            notes.append(f"header says {n_records} data records but the file holds {available}; read {available}")
        n_records = available
    if strict and any(n.startswith(("incomplete", "header says")) for n in notes):
        raise PSGReadError(f"{path}: header and data disagree (truncated file, or a header that lies about its "
                           f"sample counts): {'; '.join(notes)}")
    if n_records * duration > MAX_RECORDING_S:
        raise PSGReadError(f"{path}: {n_records} records of {duration:g} s is {n_records * duration / 86400:.1f} days, "
                           f"more than the {MAX_RECORDING_S / 86400:g} days any night can last")
    return dataclasses.replace(header, n_records=n_records, notes=tuple(notes))


def _parse_tal(block: bytes, record: int, notes: list[str]) -> tuple[float | None, list[TimedText]]:
    """One record's annotation bytes → its time-keeping onset and its annotations."""
    keeping: float | None = None
    out: list[TimedText] = []
    for k, tal in enumerate(t for t in block.split(b"\x00") if t):
        parts = tal.split(b"\x14")
        timing = parts[0].split(b"\x15")
        try:
            onset = float(timing[0].decode("ascii"))
            duration = float(timing[1].decode("ascii")) if len(timing) > 1 and timing[1] else 0.0
            if not (math.isfinite(onset) and math.isfinite(duration)):
                raise ValueError("not finite")
        except (ValueError, UnicodeDecodeError):
            notes.append(f"record {record + 1}: annotation {k + 1} has an unreadable time {parts[0][:20]!r}; skipped")
            continue
        texts = []
        for raw in parts[1:]:
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(raw.decode("utf-8", errors="replace"))
                notes.append(f"record {record + 1}: annotation text {raw[:20]!r} is not UTF-8; undecodable bytes "
                             "replaced")
        texts = [t for t in texts if t]
        if k == 0 and not texts:
            keeping = onset
            continue
        out += [TimedText(onset, duration, t) for t in texts]
    return keeping, out


class EdfFile:
    """Channel-by-channel access to an EDF/BDF file (``pread`` in blocks of records).

    Parameters
    ----------
    path : Path
        The file.
    strict : bool
        Refuse a file whose header and data disagree instead of repairing it.
    """

    def __init__(self, path: Path, *, strict: bool = False) -> None:
        self.path = path
        self.header = read_header(path, strict=strict)
        self._onsets: np.ndarray | None = None
        self._keeping: list[float | None] | None = None
        self._annotations: list[TimedText] | None = None
        self._annotation_notes: list[str] = []

    @property
    def channels(self) -> list[EdfChannel]:
        """The data channels (annotation channels excluded)."""
        return [c for c in self.header.channels if not c.is_annotation]

    def _channel_offset(self, channel: EdfChannel) -> int:
        return sum(c.samples_per_record for c in self.header.channels[:channel.index])

    def _blocks(self, channel: EdfChannel) -> Iterator[tuple[int, np.ndarray]]:
        """``(first record, digital samples (records, samples_per_record))`` of one channel, in
        blocks of about 16 MiB of the file, so reading never holds more than one block of it."""
        h = self.header
        bps, spr = h.bytes_per_sample, channel.samples_per_record
        record_bytes = h.record_samples * bps
        start = self._channel_offset(channel) * bps
        per_block = max(_BLOCK_BYTES // max(record_bytes, 1), 1)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for first in range(0, h.n_records, per_block):
                count = min(per_block, h.n_records - first)
                raw = os.pread(fd, count * record_bytes, h.header_bytes + first * record_bytes)
                if len(raw) < count * record_bytes:
                    raise PSGReadError(f"{self.path}: the file ended while reading record {first + 1}; it was "
                                       "truncated while being read")
                block = np.frombuffer(raw, dtype=np.uint8).reshape(count, record_bytes)[:, start:start + spr * bps]
                yield first, self._decode(block, count, spr)
        finally:
            os.close(fd)

    def _records(self, channel: EdfChannel) -> np.ndarray:
        """All digital samples (n_records, samples_per_record) of one (annotation) channel."""
        out = np.empty((self.header.n_records, channel.samples_per_record), dtype=np.int32)
        for first, block in self._blocks(channel):
            out[first:first + len(block)] = block
        return out

    def _decode(self, block: np.ndarray, count: int, spr: int) -> np.ndarray:
        if self.header.kind == "EDF":
            return np.ascontiguousarray(block).view("<i2").reshape(count, spr)
        b = np.ascontiguousarray(block).reshape(count, spr, 3).astype(np.int32)
        value = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        return np.where(value >= 1 << 23, value - (1 << 24), value)

    def record_onsets(self) -> np.ndarray:
        """Onset of every data record in seconds from the first: the time-keeping annotations of an
        EDF+D file, ``k × record duration`` otherwise."""
        if self._onsets is None:
            if not self.header.discontinuous:
                self._onsets = np.arange(self.header.n_records) * self.header.record_duration_s
            else:
                keeping = self._parse_annotations()
                missing = [i for i, k in enumerate(keeping) if k is None]
                if missing:
                    raise PSGReadError(f"{self.path}: EDF+D record {missing[0] + 1} has no time-keeping annotation, "
                                       "so its place in time is unknown")
                onsets = np.asarray(keeping, dtype=float)
                onsets -= onsets[0] if onsets.size else 0.0
                if np.any(np.diff(onsets) < self.header.record_duration_s - 1e-6):
                    raise PSGReadError(f"{self.path}: EDF+D record onsets overlap or go backwards")
                if onsets.size and onsets[-1] + self.header.record_duration_s > MAX_RECORDING_S:
                    raise PSGReadError(f"{self.path}: EDF+D record onset {onsets[-1]:g} s is beyond "
                                       f"{MAX_RECORDING_S / 86400:g} days")
                self._onsets = onsets
        return self._onsets

    def gaps(self) -> list[tuple[float, float]]:
        """``(onset_s, duration_s)`` of every gap between records (EDF+D only)."""
        onsets = self.record_onsets()
        ends = onsets + self.header.record_duration_s
        return [(float(e), float(s - e)) for e, s in zip(ends[:-1], onsets[1:], strict=True) if s - e > 1e-6]

    @property
    def duration_s(self) -> float:
        onsets = self.record_onsets()
        return float(onsets[-1] + self.header.record_duration_s) if onsets.size else 0.0

    def read(self, channel: EdfChannel) -> tuple[np.ndarray, float]:
        """Physical values (float64, the file's unit) and the fraction of samples at the digital limits.

        Calibrated block by block into the output, so memory holds one channel and one block.
        EDF+D gaps are NaN. Raises PSGReadError if the channel is unusable (``channel.problem``).
        """
        if channel.problem:
            raise PSGReadError(f"{self.path}: channel {channel.label!r} cannot be used: {channel.problem}")
        spr = channel.samples_per_record
        sfreq = self.header.sfreq(channel)
        onsets = self.record_onsets()
        if self.header.discontinuous:
            out = np.full(int(round(self.duration_s * sfreq)), np.nan)
        else:
            out = np.empty(self.header.n_records * spr)
        at_limits = 0
        for first, digital in self._blocks(channel):
            at_limits += int(np.count_nonzero(digital == channel.digital_min))
            at_limits += int(np.count_nonzero(digital == channel.digital_max))
            # calibrated in place: (digital − digital_min) × gain + physical_min, no temporaries
            physical = (out[first * spr:(first + len(digital)) * spr].reshape(len(digital), spr)
                        if not self.header.discontinuous else np.empty(digital.shape))
            np.subtract(digital, channel.digital_min, out=physical, dtype=np.float64)
            physical *= channel.gain
            physical += channel.physical_min
            if not self.header.discontinuous:
                continue
            for onset, row in zip(onsets[first:first + len(digital)], physical, strict=True):
                begin = int(round(onset * sfreq))
                out[begin:begin + spr] = row[:max(out.size - begin, 0)]
        total = self.header.n_records * spr
        return out, at_limits / total if total else 0.0

    def _parse_annotations(self) -> list[float | None]:
        """Parse every annotation signal once; returns each record's time-keeping onset."""
        if self._keeping is None:
            keeping: list[float | None] = [None] * self.header.n_records
            annotations: list[TimedText] = []
            annotation_channels = [c for c in self.header.channels if c.is_annotation and c.samples_per_record > 0]
            for channel in (annotation_channels if self.header.n_records else []):  # 0 samples: nothing to read
                records = self._records(channel)
                raw = (records.astype("<i2").view(np.uint8) if self.header.kind == "EDF"
                       else records.astype("<i4").view(np.uint8).reshape(*records.shape, 4)[..., :3])
                raw = raw.reshape(self.header.n_records, -1)
                # most records hold only their time-keeping TAL; unless the file is EDF+D (whose
                # record onsets are needed) only records with more than that are parsed in Python
                rows: list[int] = list(range(self.header.n_records))
                if not self.header.discontinuous:
                    first_end = np.argmax(raw == 0, axis=1)
                    more = (raw * (np.arange(raw.shape[1]) > first_end[:, None])).any(axis=1)
                    rows = sorted({0, *np.flatnonzero(more).tolist()})
                for r in rows:
                    onset, texts = _parse_tal(raw[r].tobytes(), r, self._annotation_notes)
                    if keeping[r] is None:
                        keeping[r] = onset
                    annotations += texts
            # EDF+D onsets count from the first record's time-keeping onset, as the signals do
            shift = (keeping[0] or 0.0) if self.header.discontinuous and keeping else 0.0
            if len(self._annotation_notes) > 5:
                more = len(self._annotation_notes) - 5
                self._annotation_notes[5:] = [f"... and {more} more unreadable annotation(s)"]
            self._annotations = [dataclasses.replace(a, onset_s=a.onset_s - shift) for a in annotations]
            self._keeping = keeping
        return self._keeping

    def annotations(self) -> tuple[list[TimedText], list[str]]:
        """EDF+ annotations (time-keeping entries excluded) and what could not be read of them."""
        self._parse_annotations()
        return list(self._annotations or []), list(self._annotation_notes)
