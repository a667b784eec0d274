@rollback @p1
Feature: Rollback Paper to Lab
  Runbook section "Rollback Procedures": stepping back from paper trading to the lab must always
  be possible and leave no live connection.

  Background:
    Given the trading stack is running in lab mode

  Scenario: Promote to paper, then roll back to lab
    When the on-call runs "traderunner promote --to paper"
    Then the trading engine reports mode "paper"
    When the on-call follows runbook step 1 of "Rollback Paper → Lab"
    Then the trading engine reports mode "lab"
    And the on-call follows runbook step 2 of "Rollback Paper → Lab"

  Scenario: Live promotion is refused by the mock stack
    When the on-call tries to run "traderunner promote --to live"
    Then the command is refused with exit code 3
    And the trading engine reports mode "lab"
