"""How many 5-minute HRV segments real hypnograms give: ours (each stretch of one kind cut from its
start, ``cardiac.hrv_segments``) against a grid of 5-minute segments from the recording start.

Reads the real hypnograms in ``../shared/data/real`` (20 Sleep-EDF nights, one HMC night), the
whole recording counted as in bed, and prints the segments of wake, NREM and R each way.

    python benchmarks/hrv_segment_yield.py [--data ../shared/data/real]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synthsleepnet.cardiac import HRV_SEGMENT_S, HRV_STAGES, hrv_segments
from synthsleepnet.io.annotations import read_scoring


def _grid_counts(stages: np.ndarray) -> dict[str, int]:
    """Segments of a grid from the recording start whose epochs are all of one kind."""
    per = int(HRV_SEGMENT_S // 30)
    counts = dict.fromkeys(HRV_STAGES, 0)
    for first in range(0, stages.size - per + 1, per):
        for kind, codes in HRV_STAGES.items():
            counts[kind] += bool(np.isin(stages[first:first + per], codes).all())
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real"))
    args = parser.parse_args()
    files = sorted((args.data / "sleep-edf" / "hypnograms").glob("*.edf")) + [args.data / "hmc" / "SN001_sleepscoring.edf"]
    totals = {"grid": dict.fromkeys(HRV_STAGES, 0), "ours": dict.fromkeys(HRV_STAGES, 0)}
    print(f"{'night':<28}" + "".join(f"{way + ' ' + kind:>11}" for way in totals for kind in HRV_STAGES))
    for path in files:
        stages = np.asarray(read_scoring(path).stages)
        ours = hrv_segments(np.empty(0), stages)["kind"].value_counts()
        counts = {"grid": _grid_counts(stages), "ours": {kind: int(ours.get(kind, 0)) for kind in HRV_STAGES}}
        for way, by_kind in counts.items():
            for kind, n in by_kind.items():
                totals[way][kind] += n
        print(f"{path.name:<28}" + "".join(f"{counts[way][kind]:>11}" for way in counts for kind in HRV_STAGES))
    print(f"{'all ' + str(len(files)) + ' nights':<28}" + "".join(f"{totals[way][kind]:>11}" for way in totals
                                                                 for kind in HRV_STAGES))
    print("ours against the grid: " + ", ".join(f"{kind} {100 * (totals['ours'][kind] / totals['grid'][kind] - 1):+.0f} %"
                                               for kind in HRV_STAGES if totals["grid"][kind]))


if __name__ == "__main__":
    main()
