"""Package-level contracts: no import side effects, explicit public API, one logger owner."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import warnings

import pytest


def test_import_changes_no_global_state() -> None:
    # third-party dependencies install their own filters at import; ours must add none
    code = (
        "import logging, warnings, numpy, pandas, scipy.signal, scipy.ndimage, scipy.special, tqdm.auto\n"
        "filters = list(warnings.filters); root = (logging.root.level, list(logging.root.handlers))\n"
        "import synthsleepnet, synthsleepnet.simulate, synthsleepnet.cli\n"
        "assert list(warnings.filters) == filters, 'warning filters changed'\n"
        "assert (logging.root.level, list(logging.root.handlers)) == root, 'root logger changed'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("package", ["synthsleepnet", "synthsleepnet.models", "synthsleepnet.scoring"])
def test_public_api_is_explicit(package: str) -> None:
    """The lazily imported packages: ``__all__`` and the name → module table kept in step."""
    module = importlib.import_module(package)
    assert set(module.__all__) - {"__version__"} == set(module._API), package
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"


def test_version_comes_from_one_place() -> None:
    from importlib.metadata import version

    import synthsleepnet

    assert synthsleepnet.__version__ == version("synthsleepnet")


def test_package_logger_has_only_a_null_handler() -> None:
    import synthsleepnet  # noqa: F401

    handlers = logging.getLogger("synthsleepnet").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_verbose_applies_for_one_call_only() -> None:
    from synthsleepnet._logging import logger, use_log_level

    before = logger.level
    with use_log_level("debug"):
        assert logger.level == logging.DEBUG
    assert logger.level == before


def test_modules_declare_all() -> None:
    for name in ("io.channels", "io.recording", "io.annotations", "preprocessing.signal",
                 "preprocessing.pipeline", "store.epoch_store", "store.build", "simulate.night", "simulate.cohort"):
        module = importlib.import_module(f"synthsleepnet.{name}")
        assert module.__all__, name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(importlib.import_module("synthsleepnet"))
