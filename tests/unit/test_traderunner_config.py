"""traderunner configs: defaults written once, malformed files refused with file/line/field and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockstack.traderunner.config import ConfigError, RiskConfig, StrategyConfig, load_configs


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "configs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_absent_files_are_written_with_defaults(tmp_path: Path) -> None:
    configs = load_configs(tmp_path)
    assert configs.risk == RiskConfig()
    assert configs.strategy == StrategyConfig()
    assert (tmp_path / "configs/risk.yml").read_text().count("max_daily_loss: 1000.0") == 1
    # written defaults parse to the same values (no drift between text and dataclass)
    assert load_configs(tmp_path) == configs


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "risk.yml", "max_daily_loss: 100\nmax_position: [1, 2\nmax_orders_per_minute: 3\n")
    with pytest.raises(ConfigError) as err:
        load_configs(tmp_path)
    text = str(err.value)
    assert "configs/risk.yml" in text and "line 3" in text and "malformed YAML" in text and "fix" in text


def test_wrong_field_type_names_the_field(tmp_path: Path) -> None:
    write(tmp_path, "risk.yml", "max_position: lots\n")
    with pytest.raises(ConfigError, match=r"risk\.yml: field 'max_position' must be a positive integer, got 'lots'"):
        load_configs(tmp_path)


def test_bool_flag_must_be_a_bool(tmp_path: Path) -> None:
    write(tmp_path, "risk.yml", "allow_risk_reducing_when_killed: 'yes please'\n")
    with pytest.raises(ConfigError, match="allow_risk_reducing_when_killed"):
        load_configs(tmp_path)


@pytest.mark.parametrize("value", ["-5", "0", ".nan"])
def test_negative_or_zero_limit_is_refused(tmp_path: Path, value: str) -> None:
    write(tmp_path, "risk.yml", f"max_daily_loss: {value}\n")
    with pytest.raises(ConfigError, match=r"field 'max_daily_loss' must be a positive number \(> 0\)"):
        load_configs(tmp_path)


def test_unknown_field_is_refused_not_ignored(tmp_path: Path) -> None:
    write(tmp_path, "risk.yml", "max_daily_los: 10\n")
    with pytest.raises(ConfigError, match="unknown field 'max_daily_los'"):
        load_configs(tmp_path)


def test_strategy_symbols_count_or_list(tmp_path: Path) -> None:
    write(tmp_path, "strategy.yml", "symbols: [ABC, DEF]\nbase_qty: 5\nfast: 3\nslow: 9\n")
    assert load_configs(tmp_path).strategy == StrategyConfig(symbols=("ABC", "DEF"), base_qty=5, fast=3, slow=9)
    write(tmp_path, "strategy.yml", "symbols: []\n")
    with pytest.raises(ConfigError, match="symbols"):
        load_configs(tmp_path)


def test_fast_must_be_below_slow(tmp_path: Path) -> None:
    write(tmp_path, "strategy.yml", "fast: 40\nslow: 10\n")
    with pytest.raises(ConfigError, match="'fast' \\(40\\) must be smaller than 'slow' \\(10\\)"):
        load_configs(tmp_path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "strategy.yml", "- just\n- a list\n")
    with pytest.raises(ConfigError, match="strategy.yml: expected a mapping"):
        load_configs(tmp_path)


def test_position_limit_below_strategy_size_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "risk.yml", "max_position: 5\n")
    with pytest.raises(ConfigError, match="exceeds max_position"):
        load_configs(tmp_path)
