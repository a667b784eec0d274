"""The trading dashboard: one server-rendered page a trader reads at a glance.

``python -m mockstack.dashboard`` serves ``GET /`` (HTML, refreshes every 2 s), ``GET /api/summary``
(the same data as JSON), ``/health`` and ``/metrics``. It reads the trading engine's
``GET /api/status`` and, when configured, Alertmanager's ``GET /api/v2/alerts``; both answers are
parsed once, at the edge (:mod:`mockstack.dashboard.model`), into frozen dataclasses.
"""
