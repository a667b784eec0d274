@p1 @execution
Feature: High latency and order rejections
  Runbook severity P1: latency above the p99 SLO, order rejections above 10%.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine is connected to the broker

  Scenario: The broker rejects more than 10% of orders
    When the broker starts rejecting 60% of orders
    Then a P1 alert "OrderRejectionRateHigh" fires within 30 seconds
    When the broker's reject rate is restored
    Then the "OrderRejectionRateHigh" alert resolves within 60 seconds
    # RTO target = the two deadlines above. The alert rule looks at the last 30 s of orders, so it
    # resolves only once enough accepted orders push the rejects under 10% of that window:
    # measured 17-27 s, the longest scenario of the suite (the floor of a parallel run).
    And the recovery meets an RTO of 90 seconds

  Scenario Outline: Order latency above the SLO (<cause>) is detected
    When <cause>
    Then a P1 alert "OrderLatencyHigh" fires within 30 seconds

    Examples:
      | cause                                              |
      | the broker link gets 400 ms of latency             |
      | the broker link gets 300 ms of latency with 100 ms jitter |
