"""The mock broker: an IBKR-like order gateway speaking newline-delimited JSON over TCP.

Modules: ``config`` (flags + environment), ``protocol`` (wire messages, parsed once at the edge),
``model`` (orders and fills), ``store`` (SQLite truth, WAL), ``engine`` (rejects, idempotency,
fills, positions), ``server`` (asyncio TCP sessions, heartbeats, fill timers), ``admin`` (HTTP
admin API), ``metrics`` (Prometheus), ``service`` (wiring and lifecycle). See ``PROTOCOL.md``.
"""
