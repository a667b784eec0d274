"""Binds every feature under features/ (pytest-bdd): one test per scenario (and Examples row).

A file there that does not parse is left out, so it cannot poison runs that do not select it;
``drill run`` reports it with file:line when it is selected (``harness/preflight.py``).
"""

from pathlib import Path

from pytest_bdd import scenarios

from harness.preflight import features_that_parse

scenarios(*features_that_parse(Path(__file__).resolve().parents[1] / "features"))
