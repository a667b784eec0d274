"""Runbooks as code: parse the incident runbook (Markdown), lint it, and run its steps from drills.

* :mod:`harness.runbook.parser`: Markdown -> sections -> numbered steps -> shell blocks and prose
  checks, each with file:line; malformed input becomes diagnostics, never a crash.
* :mod:`harness.runbook.linter`: findings (blocking / warning) for steps nobody can act on at 3 a.m.
* :mod:`harness.runbook.executor`: runs one step's shell blocks in the stack's working directory
  and records it on the drill's timeline.
* :mod:`harness.runbook.coverage`: which drills exercise which section, and how they last went.
"""
