"""``python -m synthsleepnet``: the same as the ``synthsleepnet`` command."""

from .cli import run

run()
