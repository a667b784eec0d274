"""traderunner: the mock trading engine (strategy, risk limits, kill switch, broker connector, data SLA).

Modules: ``config`` (risk/strategy YAML), ``store`` (SQLite source of truth), ``exports`` (JSON and
CSV files the runbook reads), ``marketdata_client`` + ``quality`` (bars and their SLA),
``strategy``, ``risk`` (limits, daily P&L, kill switch), ``broker_connector`` (TCP protocol),
``orders`` (idempotent order manager), ``metrics``, ``service`` (main loop + control API),
``cli`` (the ``traderunner`` operator CLI).
"""
