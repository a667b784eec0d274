"""The step library: Gherkin steps in trading words, each one call into ``harness``.

``scenarios/steps/`` holds the step definitions (visible to every feature through
``scenarios/conftest.py``); ``scenarios/test_drills.py`` binds the features in ``features/``.
"""
