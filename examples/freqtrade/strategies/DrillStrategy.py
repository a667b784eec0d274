"""A strategy that trades often enough for drills: in within seconds, out after about a minute.

It has no edge and wants none. Every candle is an entry signal, so with ``max_open_trades: 1`` the
bot opens a trade on its first loop and again right after each exit; ``custom_exit`` closes a trade
once it has been open ``HOLD_SECONDS``; the stoploss and ROI are wide so they rarely fire.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy
from pandas import DataFrame

HOLD_SECONDS = 60


class DrillStrategy(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = False
    minimal_roi = {"0": 0.05}
    stoploss = -0.10
    trailing_stop = False
    process_only_new_candles = False
    startup_candle_count = 5
    use_exit_signal = True
    exit_profit_only = False
    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "limit",
        "stoploss_on_exchange": False,
    }

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe

    def custom_exit(
        self, pair: str, trade: Trade, current_time: datetime, current_rate: float, current_profit: float, **kwargs
    ) -> str | None:
        if current_time - trade.open_date_utc >= timedelta(seconds=HOLD_SECONDS):
            return "drill_hold_time"
        return None
