@q3 @p1 @data
Feature: Data SLA violation and corrupted market data
  Runbook section "Data SLA Violation".
  Bad market data must never be traded on. The engine flags every corrupt bar, turns the SLA badge
  red, refuses promotion to paper or live, and only clears once the data is re-fetched and
  re-validated.

  Background:
    Given the trading stack is running in lab mode

  Scenario Outline: The feed serves <corruption> bars; the SLA is violated and promotion is blocked
    When the market data feed starts serving <corruption> bars
    Then a P1 alert "DataSLAViolation" fires within 5 seconds
    And the SLA report shows status "violated"
    And promotion to paper is refused
    When the on-call follows runbook step 1 of "Data SLA Violation"
    Then its output shows "violated"
    When the market data feed is repaired
    And the on-call follows runbook step 4 of "Data SLA Violation"
    And the on-call follows runbook step 5 of "Data SLA Violation"
    Then the SLA report shows status "ok" within 10 seconds
    And promotion to paper is allowed
    And the recovery meets an RTO of 120 seconds

    Examples:
      | corruption   |
      | nan          |
      | negative     |
      | ohlc         |
      | duplicate    |
      | out_of_order |
      | gap          |

  Scenario: A stale feed is an SLA violation too
    When the market data feed goes stale
    Then a P1 alert "DataSLAViolation" fires within 8 seconds
    And the SLA report shows status "violated"
