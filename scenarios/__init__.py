"""This repository's drill project, bound for plain pytest (``pytest scenarios`` in ``make test``).

The steps are the harness's shared library (``harness.steps``); ``scenarios/test_drills.py`` binds
the features in ``features/``. ``drill run`` does not use this package: it binds the project's
features itself (``harness/runner.py``), exactly as it does for any team's drill project.
"""
