"""Peak memory of `info` and `prepare` on long nights: 8, 24 and 48 hours, 10 channels.

A simulated 8-hour night (EEG/EOG 256 Hz, chin EMG 512 Hz, ECG 256 Hz, airflow and belts
32 Hz, SpO2 1 Hz) is tiled record by record into 24- and 48-hour EDF files; each command then
runs in its own process and reports its peak resident memory (``VmHWM``), next to the
memory of a process that only imported the package (the floor).

    python benchmarks/long_night_memory.py [--hours 8 24 48]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import peak_rss_mb


def tile_edf(source: Path, target: Path, times: int) -> Path:
    """Repeat an EDF+C file's data records ``times`` times (streamed; constant memory)."""
    with open(source, "rb") as f:
        ns = int(f.read(256)[252:256].decode().strip())
        f.seek(0)
        header = bytearray(f.read(256 * (ns + 1)))
        n_records = int(header[236:244].decode().strip())
        header[236:244] = str(n_records * times).encode().ljust(8)
        data_start = f.tell()
    with open(target, "wb") as out:
        out.write(header)
        for _ in range(times):
            with open(source, "rb") as f:
                f.seek(data_start)
                while chunk := f.read(16 << 20):
                    out.write(chunk)
    return target


def _child(command: str, path: str, workdir: str) -> None:
    t0 = time.perf_counter()
    if command == "import":
        import synthsleepnet.preprocessing  # noqa: F401
        import synthsleepnet.store  # noqa: F401
    elif command == "info":
        from synthsleepnet.cli import main

        main(["info", path, "--json"])
    else:
        from synthsleepnet import prepare_store

        summary = prepare_store([path], Path(workdir) / f"store-{Path(path).stem}", progress=False)
        assert summary.ok, summary.text()  # noqa: S101
    sys.stderr.write(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": peak_rss_mb()}) + "\n")



def _run(command: str, path: Path | str, workdir: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", command, str(path), workdir],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", nargs="+", type=int, default=[8, 24, 48])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from synthsleepnet.simulate import simulate_night, write_night

    with tempfile.TemporaryDirectory() as tmp:
        base, _ = write_night(simulate_night(3, 8.0, ahi=20.0), Path(tmp) / "base")
        floor = _run("import", "-", tmp)["peak_mb"]
        print(f"floor (python + numpy/scipy/pandas + package imported): {floor:.0f} MB")
        print("| night | channels | EDF size | info peak | prepare peak | prepare time |")
        print("|---|---|---|---|---|---|")
        for hours in args.hours:
            if hours % 8:
                parser.error("--hours must be multiples of 8 (the simulated night is tiled)")
            path = base if hours == 8 else tile_edf(base, Path(tmp) / f"night-{hours}h.edf", hours // 8)
            info, prepare = _run("info", path, tmp), _run("prepare", path, tmp)
            size = path.stat().st_size / 2**20
            print(f"| {hours} h | 10 | {size:.0f} MB | {info['peak_mb']:.0f} MB | {prepare['peak_mb']:.0f} MB "
                  f"({prepare['peak_mb'] / size:.1f}× the file) | {prepare['seconds']:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
