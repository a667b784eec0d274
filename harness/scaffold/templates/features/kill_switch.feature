@q1 @p0 @kill_switch
Feature: Kill switch triggered
  Starter drill for the runbook section "Kill Switch Triggered" (written by `drill init`).
  When the day's loss breaches the risk limit, the engine must stop trading on its own, page the
  on-call, and resume only after an approved reset. Rename the alert to the one your stack fires.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine holds open positions

  Scenario: A market crash breaches the loss limit and the kill switch stops trading
    When the market drops 8% over 3 bars on every symbol
    Then a P0 alert "KillSwitchActive" fires within 30 seconds
    And no new order is sent for 3 seconds
    When the on-call resets the kill switch with approval from "head-of-risk"
    Then trading resumes within an RTO of 60 seconds
