"""The drill engine: stack backends, faults, probes, clock/timeline, runbook executor, reports,
the pytest plugin and the ``drill`` CLI. It never imports ``mockstack``."""
