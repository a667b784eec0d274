@q1 @p0 @kill_switch
Feature: Kill switch triggered
  Runbook section "Kill Switch Triggered" (P0).
  When the day's loss breaches the risk limit, the trading engine must stop trading on its own:
  cancel working orders, send nothing new, say why in its log, and page the on-call. Trading may
  only resume after someone with authority approves the reset.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine holds open positions

  Scenario: A market crash breaches the daily loss limit and the kill switch stops trading
    When the market drops 8% over 3 bars on every symbol
    Then a P0 alert "KillSwitchActive" fires within 5 seconds
    And the trading engine log shows "Kill switch activated" within 5 seconds
    And no new order is sent for 3 seconds
    When the on-call follows runbook step 1 of "Kill Switch Triggered"
    Then its output shows "Kill switch activated"
    When the on-call follows runbook step 2 of "Kill Switch Triggered"
    And the on-call follows runbook step 5 of "Kill Switch Triggered"
    Then its output shows "kill switch: inactive"
    And trading resumes within an RTO of 60 seconds

  Scenario: The kill switch cannot be reset without a named approver
    When the on-call trips the kill switch by hand because "suspicious fills"
    Then a P0 alert "KillSwitchActive" fires within 5 seconds
    When the on-call tries to run "traderunner reset-kill-switch --reason 'looks fine'"
    Then the command is refused with exit code 2
    And the kill switch is still active
