"""Binds every feature under features/ (pytest-bdd): one test per scenario (and Examples row)."""

from pytest_bdd import scenarios

scenarios(".")
