"""Read a channel label the way a sleep technologist would: electrodes, reference, sensor kind.

A table of exact aliases cannot keep up with the ways clinics label the same electrodes
(``C3-A1``, ``EEG C3:M2``, ``C3_A2``, ``Fp1-CLE``; ``EOG1-A1``, ``LOC``, ``EOG Left Horiz``;
``NAF1``, ``PTAF``, ``VTH``, ``VAB``, ``SAO2``). :func:`parse_label` reads a label into

- a scalp derivation: 10-20/10-10 electrode(s) and a reference (contralateral, ipsilateral,
  linked, Cz, average), named canonically (``C3-A1`` → ``C3-M1``: A1/A2 are M1/M2);
- an eye (``E1``/``E2`` with their reference, or the horizontal ``EOG-H``), chin EMG, ECG,
  airflow (nasal pressure, thermistor), thoracic and abdominal effort, SpO2;
- or a sensor that is recognised but is no model input (position, snore, pulse, leg EMG,
  light, temperature, markers), or a label that is ambiguous (an ``EOG`` without a side) —
  reported, never guessed.

It also knows the scalp regions, so a model asking for ``C4-M1`` can be given the nearest
derivation a night has (:func:`stand_in`): the same electrode with another reference, then
the other central electrodes, and frontal or occipital ones only when no central one exists.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

__all__ = ["ParsedLabel", "canonical_modality", "is_position_label", "parse_label", "region", "stand_in"]

# 10-20 and 10-10 electrode names (old T3/T4/T5/T6 included); A1/A2 are read as M1/M2.
_ELECTRODES = (
    "Fp1 Fp2 Fpz AF3 AF4 AF7 AF8 AFz F1 F2 F3 F4 F5 F6 F7 F8 F9 F10 Fz FC1 FC2 FC3 FC4 FC5 FC6 FCz "
    "FT7 FT8 FT9 FT10 C1 C2 C3 C4 C5 C6 Cz T3 T4 T5 T6 T7 T8 T9 T10 TP7 TP8 TP9 TP10 CP1 CP2 CP3 "
    "CP4 CP5 CP6 CPz P1 P2 P3 P4 P5 P6 P7 P8 P9 P10 Pz PO3 PO4 PO7 PO8 POz O1 O2 Oz Iz M1 M2 A1 A2"
).split()
_CANON = {e.upper(): ("M1" if e == "A1" else "M2" if e == "A2" else e) for e in _ELECTRODES}
_ELECTRODE = "|".join(sorted(map(re.escape, _CANON), key=len, reverse=True))
# references that are not one electrode: linked mastoids/ears, average, common
_LINKED = {"A1A2": "M1M2", "M1M2": "M1M2", "A1+A2": "M1M2", "M1+M2": "M1M2", "(A1+A2)/2": "M1M2",
           "(M1+M2)/2": "M1M2", "LM": "M1M2", "LE": "M1M2", "CLE": "M1M2", "LER": "M1M2", "AVG": "Ref",
           "AV": "Ref", "AVE": "Ref", "CAR": "Ref", "REF": "Ref", "AR": "Ref"}
_REFERENCE = "|".join(sorted(map(re.escape, [*_LINKED, *_CANON]), key=len, reverse=True))
_SEP = r"[\s\-:/_–]*"
_SCALP = re.compile(rf"^(?:EEG\s*)?({_ELECTRODE})(?:{_SEP}({_REFERENCE}))?$", re.IGNORECASE)

_REGIONS = {"FP": "frontal", "AF": "frontal", "F": "frontal", "FC": "central", "FT": "temporal",
            "C": "central", "CP": "central", "T": "temporal", "TP": "temporal", "P": "parietal",
            "PO": "occipital", "O": "occipital", "I": "occipital", "M": "mastoid", "A": "mastoid"}
#: How far a stand-in may be from the region a model asked for, best first.
_NEAREST = {"central": ("central", "frontal", "parietal", "occipital", "temporal"),
            "frontal": ("frontal", "central", "parietal", "temporal", "occipital"),
            "parietal": ("parietal", "central", "occipital", "frontal", "temporal"),
            "occipital": ("occipital", "parietal", "central", "temporal", "frontal"),
            "temporal": ("temporal", "central", "frontal", "parietal", "occipital")}


@dataclasses.dataclass(frozen=True)
class ParsedLabel:
    """What a label is: a canonical channel with its modality, or why it is not a model input.

    ``canonical`` is None for labels that are recognised but not used (``reason`` says what
    they are), ambiguous (``ambiguous`` is True) or not understood. ``rule`` says how the label
    was read, for ``synthsleepnet info``.
    """

    label: str
    canonical: str | None
    modality: str | None
    rule: str
    reason: str | None = None
    ambiguous: bool = False


def _compact(label: str) -> str:
    return re.sub(r"[\s_]+", " ", label.strip())


def _key(label: str) -> str:
    return re.sub(r"[\s_\-:/().]+", "", label.lower())


def _reference(token: str | None) -> str:
    if token is None:
        return "Ref"
    upper = token.upper()
    return _LINKED.get(upper) or _CANON.get(upper, token)


def region(electrode: str) -> str:
    """The scalp region of an electrode (``C3``, ``Cz`` → central; ``Fpz`` → frontal)."""
    letters = re.sub(r"(\d+|Z)$", "", electrode.upper())
    return _REGIONS.get(letters, "other")


def hemisphere(electrode: str) -> str:
    """``left`` (odd number), ``right`` (even) or ``midline`` (``z``)."""
    digits = re.search(r"(\d+)$", electrode)
    return "midline" if digits is None else ("left" if int(digits.group(1)) % 2 else "right")


_POSITION_RULE = "body position: not a model input"
# (pattern on the compact lower-case key, canonical, modality, rule); first match wins
_EYE_LEFT = r"(e1|loc|eog1|leog|eogl|eogleft|lefteog|eoglefthoriz|lefthoriz|lefteye|eogg|eogsin)"
_EYE_RIGHT = r"(e2|roc|eog2|reog|eogr|eogright|righteog|eogrighthoriz|righthoriz|righteye|eogd|eogdx)"
_SENSORS: tuple[tuple[str, str | None, str | None, str], ...] = (
    (r".*off$", None, None, "an impedance or lead-off channel, not a signal"),
    (r"(eog)?(roc(loc)?|loc(roc)?|e2e1|e1e2|heog|eogh|eoghorizontal|horizontal)$", "EOG-H", "eog",
     "horizontal EOG (one bipolar eye channel)"),
    (r"(eog)?(veog|eogv|eogvertical|vertical)$", "EOG-V", "eog", "vertical EOG"),
    (r"(emg)?(lleg|rleg|leg[lr12]?|[lr]leg[12]?|legs?|tib\w*|[lr]at|lat|rat|limb\w*|[ds]x1[ds]x2|plm\w*)"
     r"(emg)?\d*$", None, None, "leg EMG (periodic limb movements): not a model input"),
    (r"(emg)?(chin|submental|submentalis|mentalis|lchin|rchin|chin\d*chin\d*|lchinrchin|emgchin|chinemg)\w*$",
     "Chin", "emg", "chin EMG"),
    (r"emg\d*(emg\d*)?$", "Chin", "emg", "EMG without a site: chin EMG, as in polysomnography montages"),
    (r"(ecg|ekg)\w*$", "ECG", "ecg", "ECG"),
    (r"(resp)?(nasalpressure|nasalpress?|pres|pressure|ptaf|naf\d*p?|nasal|cannula|cannulaflow|cflow|p?flow|airflow|"
     r"newair|air|oronasal|therm|thermi|thermistor|termistore|nasaltherm|oralnasal|oraltherm\w*|flowth\w*|"
     r"therm\w*flow)\d*$", "Airflow", "resp", "airflow (nasal pressure or thermistor)"),
    (r"(resp)?(thor\w*|thorax|thoracic|chest|vth|torace|tho|ripthor\w*|beltthor\w*|effortthor?)$", "Thor", "resp",
     "thoracic effort belt"),
    (r"(resp)?(abd\w*|abdomen|abdominal|vab|addome|ripabd\w*|beltabd\w*|effortabd)$", "Abdo", "resp",
     "abdominal effort belt"),
    (r"(ox|o2)?stat(us)?$|oxstatus|spo2status", None, None, "an oximeter status channel, not a signal"),
    (r"(s[pa][o0]2|osat|o2sat|sat|sato2|oxygensaturation|oxygen)\d*(%|pct|percent|bb|beattobeat)?$", "SpO2", "spo2",
     "oxygen saturation"),
    (r"(pos|position|bodyposition|bodypos|body|posture)$", None, None, _POSITION_RULE),
    (r"(snore|snoring|phono|mic|sound|microphone)\w*$", None, None, "snore sensor: not a model input"),
    (r"(pr|pulse|pulserate|hr|dhr|heartrate|pleth\w*|ppg)$", None, None, "pulse / heart rate: not a model input"),
    (r"(light|lux|lights)$", None, None, "light sensor: not a model input"),
    (r"(temp|temperature|temprectal)\w*$", None, None, "temperature: not a model input"),
    (r"(eventmarker|marker|event|annotations?|status|trigger|dc\d+|aux\d*|cpap\w*)$", None, None,
     "a marker or auxiliary channel: not a model input"),
)
#: Sensors read word by word where no pattern above matched (``Chest Belt``, ``Effort Thorax``,
#: ``Oro-Nasal Therm``, ``EMG Ment``): (canonical, modality, rule, words one of which must be
#: there, words that may come with them). Any other word (``CPAP``, ``Patient``, ``Sum``) leaves
#: the label not understood.
_WORD_RULES: tuple[tuple[str, str, str, frozenset[str], frozenset[str]], ...] = (
    ("Airflow", "resp", "airflow (nasal pressure or thermistor)",
     frozenset({"flow", "airflow", "pressure", "press", "pres", "cannula", "therm", "thermi", "thermistor", "ptaf"}),
     frozenset({"nasal", "oral", "oro", "oronasal", "naso", "resp", "signal"})),
    ("Thor", "resp", "thoracic effort belt", frozenset({"thor", "thorax", "thoracic", "chest", "tho", "vth"}),
     frozenset({"effort", "belt", "rip", "resp", "inductance", "movement", "signal"})),
    ("Abdo", "resp", "abdominal effort belt", frozenset({"abd", "abdo", "abdomen", "abdominal", "vab"}),
     frozenset({"effort", "belt", "rip", "resp", "inductance", "movement", "signal"})),
    ("Chin", "emg", "chin EMG", frozenset({"chin", "ment", "mentalis", "submental", "submentalis"}),
     frozenset({"emg", "l", "r", "left", "right"})),
)
_AMBIGUOUS = ((r"eog\d{2,}|eog", "an EOG without a side (left/right) cannot be placed; give it an alias"),
              (r"resp|effort|belt|rip", "a respiratory channel without its kind (flow, thorax, abdomen); give it an "
                                        "alias"),
              (r"eeg\d*", "an EEG without its electrodes; give it an alias (cohorts differ: SHHS EEG is C4-M1)"))


def _eye(key: str) -> tuple[str, str] | None:
    """``(side, reference)`` of an eye label such as ``EOG1-A1``, ``LOC``, ``E2:M2``."""
    for side, pattern in (("E1", _EYE_LEFT), ("E2", _EYE_RIGHT)):
        match = re.fullmatch(rf"(?:eog)?{pattern}(?:eog)?({_REFERENCE.lower()})?", key)
        if match:
            return side, _reference(match.group(2))
    return None


def is_position_label(label: str) -> bool:
    """Whether ``label`` names a body-position sensor (``Position``, ``POS``, ``Body Position``).

    >>> is_position_label("POSITION"), is_position_label("Body Position"), is_position_label("Pleth")
    (True, True, False)
    """
    return parse_label(label).rule == _POSITION_RULE


def parse_label(label: str) -> ParsedLabel:
    """Read one channel label (see the module docstring); never raises.

    Examples
    --------
    >>> parse_label("C3-A1").canonical, parse_label("EEG Fp1:CLE").canonical
    ('C3-M1', 'Fp1-M1M2')
    >>> parse_label("EOG1-A1").canonical, parse_label("NAF1").canonical, parse_label("VTH").canonical
    ('E1-M1', 'Airflow', 'Thor')
    >>> parse_label("POS").reason
    'body position: not a model input'
    """
    compact = _compact(label)
    scalp = _SCALP.match(compact)
    if scalp and _CANON[scalp.group(1).upper()] in ("M1", "M2"):
        electrode = _CANON[scalp.group(1).upper()]
        if scalp.group(2) is None:
            return ParsedLabel(label, None, None, "reference electrode",
                               f"a reference electrode ({electrode}): used to derive channels, not a channel by "
                               "itself")
        return ParsedLabel(label, None, None, "reference derivation",
                           f"reference electrodes against each other ({electrode}-{_reference(scalp.group(2))}): "
                           "not a sleep EEG channel")
    if scalp and _CANON[scalp.group(1).upper()] not in ("M1", "M2"):
        active, ref = _CANON[scalp.group(1).upper()], _reference(scalp.group(2))
        how = "monopolar, reference not stated" if scalp.group(2) is None else f"referenced to {ref}"
        return ParsedLabel(label, f"{active}-{ref}", "eeg", f"scalp electrode {active} ({region(active)}), {how}")
    key = _key(re.sub(r"^(eeg|eog|emg|ecg|ekg)\s+(?=\S)", lambda m: m.group(1), compact, flags=re.IGNORECASE))
    eye = _eye(key)
    if eye is not None:
        side, ref = eye
        name = f"{side}-{ref}" if ref != "Ref" else side
        return ParsedLabel(label, name, "eog", f"{'left' if side == 'E1' else 'right'} eye ({side}), "
                                               + (f"referenced to {ref}" if ref != "Ref" else "reference not stated"))
    for pattern, canonical, modality, rule in _SENSORS:
        if re.fullmatch(pattern, key):
            return ParsedLabel(label, canonical, modality, rule, None if canonical else rule)
    words = set(re.findall(r"[a-z]+", label.lower()))
    for canonical, modality, rule, core, extra in _WORD_RULES:
        if words & core and words <= core | extra:
            return ParsedLabel(label, canonical, modality, rule)
    for pattern, reason in _AMBIGUOUS:
        if re.fullmatch(pattern, key):
            return ParsedLabel(label, None, None, "ambiguous", reason, ambiguous=True)
    return ParsedLabel(label, None, None, "not understood",
                       "no alias and no rule matches: name its channel in a channel file (info --suggest)")


def canonical_modality(name: str) -> str | None:
    """The modality of a canonical channel name, read like a label (``C3-M1`` → eeg)."""
    return parse_label(name).modality


def _eeg_parts(name: str) -> tuple[str, str] | None:
    active, _, ref = name.partition("-")
    return (active, ref) if canonical_modality(name) == "eeg" and active else None


def stand_in(wanted: str, available: Iterable[str]) -> tuple[str, str] | None:
    """The channel that best stands in for ``wanted`` among ``available`` canonical channels.

    EEG: the same electrode with another reference, then the nearest region (for a central
    channel: central, then frontal, parietal, occipital, temporal), the same hemisphere first.
    EOG: the same eye with another reference, then the other eye, then a bipolar EOG.
    Other modalities have no stand-in. Returns ``(channel, why)`` or None.
    """
    options = [c for c in available if c != wanted]
    modality = canonical_modality(wanted)
    if modality == "eeg" and (want := _eeg_parts(wanted)):
        home = region(want[0])
        order = _NEAREST.get(home, (home,))
        ranked = []
        for channel in options:
            parts = _eeg_parts(channel)
            if parts is None or region(parts[0]) not in order:
                continue
            same = parts[0] == want[0]
            rank = (0 if same else 1 + order.index(region(parts[0])),
                    hemisphere(parts[0]) != hemisphere(want[0]), channel)
            ranked.append((rank, channel, "the same electrode with another reference" if same else
                           f"the nearest {region(parts[0])} derivation"))
        if ranked:
            _, channel, why = min(ranked)
            return channel, why
    if modality == "eog":
        side = wanted.split("-")[0]
        eyes = [c for c in options if canonical_modality(c) == "eog"]
        for channel in sorted(eyes, key=lambda c: (c.split("-")[0] != side, c.startswith("EOG"), c)):
            return channel, "the same eye with another reference" if channel.split("-")[0] == side else \
                "the other eye (or a bipolar eye channel)"
    return None
