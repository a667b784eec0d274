"""The mock market-data vendor: an EODHD-like HTTP API of M5 bars on a compressed clock.

Where things live:

* ``walk.py``   -- the seeded random walk: bar ``i`` of a symbol is a pure function of
  ``(seed, symbol, i, previous close)``; the :class:`~mockstack.marketdata.walk.Bar` dataclass.
* ``clock.py``  -- the compressed clock (one 5-minute bar every ``--bar-interval-ms``) with an
  injectable time source, and :class:`~mockstack.marketdata.clock.ManualTime` for tests.
* ``faults.py`` -- fault kinds, fault requests parsed at the edge, and the "view" corruptions.
* ``feed.py``   -- the published history (closes stored compactly), stale/shock effects, faults.
* ``metrics.py`` -- the Prometheus metrics named in ``docs/stack-contract.md``.
* ``api.py``    -- HTTP routes: ``/api/symbols``, ``/api/intraday/<symbol>``, ``/api/clock``,
  ``/admin/faults``.
* ``config.py`` -- flags and their environment variables; bad values exit 2 with one line.
* ``service.py`` -- wiring: feed + HTTP server + the ticker thread; ``__main__.py`` runs it.
"""
