"""Broker flags and environment variables: defaults, precedence, one-line errors with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockstack.broker.__main__ import main
from mockstack.broker.config import BrokerConfig, ConfigError, load_config


def test_defaults_match_the_contract() -> None:
    assert load_config([], {}) == BrokerConfig(
        host="127.0.0.1",
        order_port=7100,
        http_port=7101,
        state_db=Path("broker.sqlite3"),
        seed=42,
        symbols=8,
        heartbeat_interval=0.5,
        fill_latency_ms=50.0,
        partial_fill_ratio=0.5,
        max_order_qty=1000,
        max_orders_per_second=50,
        reject_rate=0.0,
        cancel_on_disconnect=True,
    )


def test_environment_is_read_and_the_flag_wins() -> None:
    env = {
        "BROKER_ORDER_PORT": "9100",
        "BROKER_REJECT_RATE": "0.25",
        "MOCKSTACK_SEED": "7",
        "MOCKSTACK_SYMBOLS": "3",
        "BROKER_CANCEL_ON_DISCONNECT": "off",
        "BROKER_STATE_DB": "/tmp/x.db",
    }
    config = load_config(["--order-port", "9200"], env)
    assert (config.order_port, config.reject_rate, config.seed, config.symbols) == (9200, 0.25, 7, 3)
    assert config.cancel_on_disconnect is False and config.state_db == Path("/tmp/x.db")
    assert load_config(["--cancel-on-disconnect"], env).cancel_on_disconnect is True
    assert load_config(["--no-cancel-on-disconnect"], {}).cancel_on_disconnect is False


@pytest.mark.parametrize(
    ("argv", "env", "needles"),
    [
        (["--order-port", "abc"], {}, ["--order-port", "BROKER_ORDER_PORT", "'abc'", "0..65535"]),
        ([], {"BROKER_REJECT_RATE": "2"}, ["--reject-rate", "BROKER_REJECT_RATE", "'2'", "0..1"]),
        ([], {"BROKER_HEARTBEAT_INTERVAL": "0"}, ["BROKER_HEARTBEAT_INTERVAL", "> 0"]),
        (["--fill-latency-ms", "-5"], {}, ["--fill-latency-ms", "'-5'", ">= 0"]),
        (["--partial-fill-ratio", "nan"], {}, ["--partial-fill-ratio", "0..1"]),
        (["--max-order-qty", "0"], {}, ["--max-order-qty", ">= 1"]),
        (["--symbols", "0"], {}, ["MOCKSTACK_SYMBOLS"]),
        ([], {"BROKER_CANCEL_ON_DISCONNECT": "maybe"}, ["BROKER_CANCEL_ON_DISCONNECT", "'maybe'", "true/false"]),
        (["--bogus"], {}, ["--bogus"]),
    ],
)
def test_bad_values_name_flag_value_and_what_is_accepted(
    argv: list[str], env: dict[str, str], needles: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(argv, env)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_main_exits_2_with_one_stderr_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_MAX_ORDERS_PER_SECOND", "lots")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "BROKER_MAX_ORDERS_PER_SECOND" in err and "'lots'" in err


def test_main_exits_2_when_the_state_db_cannot_be_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["--state-db", str(blocker / "broker.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--state-db" in err
