@p0 @positions
Feature: Unexpected position
  Runbook section "Unexpected Position".
  A position at the broker that no order of ours explains is a P0: it is money at risk that the
  engine does not know about. The drill checks detection, the idempotency check, and that the
  on-call can reconcile with a named approver.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine holds open positions

  Scenario: The broker shows a position without a corresponding order
    When the broker books an unexpected position of 50 units
    Then a P0 alert "UnexpectedPosition" fires within 5 seconds
    And the on-call follows runbook step 2 of "Unexpected Position" and it reports a mismatch
    And the on-call follows runbook step 3 of "Unexpected Position"
    And no idempotency key appears twice in the order journal
    When the on-call follows runbook step 4 of "Unexpected Position"
    Then the trading engine's positions match the broker's
    And the "UnexpectedPosition" alert resolves within 15 seconds
    And the recovery meets an RTO of 60 seconds
