"""This repository's drill project under plain pytest: the shared step library, loaded as a plugin."""

pytest_plugins = ["harness.steps.library"]
