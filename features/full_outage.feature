@q4 @p0 @outage
Feature: Full system failure
  Quarterly drill Q4. Every service of the trading stack crashes at once, mid-trading. After the
  restart nothing may be lost or doubled: every order the broker acknowledged is known to the
  engine, and no order is filled twice.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine has sent at least 3 orders

  Scenario: Every service crashes; the restarted stack loses no order and fills none twice
    When every service of the trading stack crashes
    Then a P0 alert "TradingEngineDown" fires within 10 seconds
    When the on-call follows runbook step 1 of "Trading Engine Down"
    Then its output shows "NOT RUNNING"
    When the on-call restarts every service
    Then every service is healthy within 30 seconds
    And the on-call follows runbook step 3 of "Trading Engine Down"
    And no acknowledged order was lost
    And no order was filled twice
    And the recovery meets an RTO of 60 seconds

  Scenario: The trading engine alone is killed mid-trading and restarted
    When the trading engine crashes
    Then a P0 alert "TradingEngineDown" fires within 10 seconds
    When the on-call restarts the trading engine
    Then every service is healthy within 30 seconds
    And no acknowledged order was lost
    And no order was filled twice
    And the recovery meets an RTO of 60 seconds
