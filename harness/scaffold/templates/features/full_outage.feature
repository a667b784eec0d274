@q4 @p0 @outage
Feature: Full system failure
  Starter drill for the quarterly full-system-failure drill (written by `drill init`).
  After every service crashes and is restarted, no acknowledged order is lost or filled twice.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine has sent at least 3 orders

  Scenario: Every service crashes; the restarted stack loses no order and fills none twice
    When every service of the trading stack crashes
    Then a P0 alert "TradingEngineDown" fires within 30 seconds
    When the on-call restarts every service
    Then every service is healthy within 60 seconds
    And no acknowledged order was lost
    And no order was filled twice
    And the recovery meets an RTO of 120 seconds
