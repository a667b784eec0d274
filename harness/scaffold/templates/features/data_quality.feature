@q3 @p1 @data
Feature: Data SLA violation
  Starter drill for the runbook section "Data SLA Violation" (written by `drill init`).
  Corrupt market data must be flagged, block promotion, and clear only after a re-fetch.

  Background:
    Given the trading stack is running in lab mode

  Scenario: The feed serves NaN bars; the SLA is violated until the data is re-fetched
    When the market data feed starts serving nan bars
    Then a P1 alert "DataSLAViolation" fires within 30 seconds
    And the SLA report shows status "violated"
    When the market data feed is repaired
    And the on-call runs the stack's "refetch_data" command
    Then the SLA report shows status "ok" within 60 seconds
    And the recovery meets an RTO of 120 seconds
