"""``python -m mockstack.broker``: parse flags/environment, run the broker, exit 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mockstack.broker.config import ConfigError, load_config
from mockstack.broker.service import SERVICE, BrokerService
from mockstack.broker.store import StoreError
from mockstack.common.logging import EventLog


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"mockstack-broker: {exc}" if not str(exc).startswith("mockstack-broker") else str(exc), file=sys.stderr)
        return 2
    log = EventLog(SERVICE)
    try:
        service = BrokerService(config, log)
    except StoreError as exc:
        print(
            f"mockstack-broker: --state-db / BROKER_STATE_DB: bad value {str(config.state_db)!r}; {exc}",
            file=sys.stderr,
        )
        return 2
    try:
        service.run()
    except OSError as exc:
        log.critical("broker_failed", f"Broker cannot listen: {exc}", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
