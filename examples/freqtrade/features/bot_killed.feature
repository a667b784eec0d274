@p0 @bot_down
Feature: Bot killed mid-trade
  Runbook section "Bot Down". Freqtrade is killed with -9 while it holds an open trade. Restarted,
  it finds its open trades in its database: nothing is re-entered, no order lost or doubled.

  Background:
    Given the trading stack is running in live mode
    And the trading engine holds open positions
    And Freqtrade's open trades and the venue's orders are noted

  Scenario: Freqtrade is killed with -9 mid-trade and restarted
    When the trading bot crashes
    Then a P0 alert "FreqtradeDown" fires within 15 seconds
    When the on-call restarts the trading bot
    Then every service is healthy within 60 seconds
    And the restarted Freqtrade still knows every trade it had open
    And no acknowledged order was lost
    And no order was filled twice
    And the recovery meets an RTO of 60 seconds
