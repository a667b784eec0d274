"""``python -m mockstack.marketdata``: run the mock market-data vendor until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from mockstack.marketdata.config import ConfigError, parse_config
from mockstack.marketdata.service import MarketdataService


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        service = MarketdataService(config)
    except ConfigError as exc:  # an anchor file that cannot be read
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"marketdata: cannot listen on {config.host}:{config.http_port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        service.log.info("service_stopping", f"Received {signal.Signals(signum).name}, stopping", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    while not stop.wait(0.2):
        pass
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
