@p0 @positions
Feature: Unexpected position
  Starter drill for the runbook section "Unexpected Position" (written by `drill init`).
  A position the engine did not trade appears at the broker: it must page, and an approved
  reconciliation must bring the engine and the broker back into agreement.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine holds open positions

  Scenario: The broker shows a position without a corresponding order
    When the broker books an unexpected position of 25 units
    Then a P0 alert "UnexpectedPosition" fires within 30 seconds
    When the on-call accepts the broker's positions with approval from "head-of-risk"
    Then the trading engine's positions match the broker's
