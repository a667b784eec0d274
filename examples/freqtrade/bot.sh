#!/usr/bin/env bash
# Start the drill bot: write its config (loopback only, or refuse), then exec Freqtrade in place, so
# this process IS the bot (a `kill -9` of it kills Freqtrade, as in a real crash).
#   bot.sh VENUE_URL API_PORT RUN_DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENUE_URL="${1:?usage: bot.sh VENUE_URL API_PORT RUN_DIR}"
API_PORT="${2:?usage: bot.sh VENUE_URL API_PORT RUN_DIR}"
RUN_DIR="${3:?usage: bot.sh VENUE_URL API_PORT RUN_DIR}"
FREQTRADE="$HERE/.venv/bin/freqtrade"
if [ ! -x "$FREQTRADE" ]; then
    echo "bot.sh: no freqtrade at $FREQTRADE; run the example's set-up first: bash $HERE/setup.sh" >&2
    exit 127
fi
mkdir -p "$RUN_DIR"
"$HERE/.venv/bin/python" "$HERE/gen_config.py" --venue-url "$VENUE_URL" --api-port "$API_PORT" \
    --run-dir "$RUN_DIR" --out "$RUN_DIR/config.json"
# Freqtrade skips its own logging set-up (so no --logfile) when PYTEST_VERSION is set, which a
# drill run under pytest passes down to the services: the bot is not under test here, so drop it.
unset PYTEST_VERSION
exec "$FREQTRADE" trade --config "$RUN_DIR/config.json" --logfile "$RUN_DIR/freqtrade.log"
