"""Body positions and the codes recorders write for them.

Recorders write body position as a number per sample (SHHS at 1 Hz, Embla at 10 Hz), and each
has its own codes — the 1 that means supine on one recorder means left on another — so the codes
are never guessed. They come from the channel itself where its EDF transducer field spells them
(``0=right 1=supine 2=left 3=prone 4=upright``, as the simulator writes them), else from the
``[position]`` section of a channel file (:func:`~synthsleepnet.io.channels.load_channel_table`):

.. code-block:: toml

    [position]
    labels = ["X9"]   # a position channel whose label does not say so (optional)
    codes = { 0 = "right", 1 = "supine", 2 = "left", 3 = "prone", 4 = "upright" }

No NumPy here: the channel table reads its codes when the command line starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["POSITIONS", "UNKNOWN_POSITION", "codes_from_transducer", "parse_position_codes"]

#: The body positions, in the order of their index in a decoded trace.
POSITIONS = ("supine", "left", "right", "prone", "upright")
#: A second whose position is not known (no sample, or a value the codes do not name).
UNKNOWN_POSITION = -1
_SYNONYMS = {"supine": "supine", "back": "supine", "left": "left", "right": "right", "prone": "prone",
             "front": "prone", "stomach": "prone", "upright": "upright", "up": "upright", "sitting": "upright"}
_CODE_ITEM = re.compile(r"\s*(-?\d+)\s*[=:]\s*([A-Za-z]+)\s*[,;]?")


def parse_position_codes(codes: Mapping[Any, Any], source: str) -> dict[int, str]:
    """A recorder's code table, code → one of :data:`POSITIONS` (``back`` reads as supine,
    ``front`` as prone, ``sitting`` as upright).

    Raises
    ------
    ValueError
        Naming ``source`` and the code or position that cannot be read.

    Examples
    --------
    >>> parse_position_codes({"0": "Right", "1": "back", "2": "left", "3": "front"}, "my.toml")
    {0: 'right', 1: 'supine', 2: 'left', 3: 'prone'}
    """
    table: dict[int, str] = {}
    for code, name in codes.items():
        try:
            number = int(str(code).strip())
        except ValueError:
            raise ValueError(f"{source}: position code {code!r} is not a whole number") from None
        position = _SYNONYMS.get(str(name).strip().lower())
        if position is None:
            raise ValueError(f"{source}: position {name!r} (code {number}) is not one of {list(POSITIONS)}")
        table[number] = position
    return table


def codes_from_transducer(text: str) -> dict[int, str] | None:
    """The code table a channel's transducer field spells (``0=right 1=supine ...``, optionally
    after ``codes``), or None when it spells none.

    >>> codes_from_transducer("codes 0=right 1=supine 2=left 3=prone 4=upright")[1]
    'supine'
    >>> codes_from_transducer("Internal mercury gauge") is None
    True
    """
    body = re.sub(r"^\s*codes?\s*:?", "", text, flags=re.IGNORECASE)
    items = _CODE_ITEM.findall(body)
    if not items or _CODE_ITEM.sub("", body).strip():
        return None
    try:
        return parse_position_codes(dict(items), "transducer field")
    except ValueError:
        return None
