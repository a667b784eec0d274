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
    Then the "OrderRejectionRateHigh" alert resolves within 45 seconds
    # The alert rule judges the last 15 s of orders (it was 30 s): it resolves once the rejected orders
    # are older than that window, or enough accepted orders push them under 10% of it. With 30 s this
    # was the longest drill of the suite (~30 s to resolve, 48 s in all); the alert still needs at
    # least 3 orders in the window and more than 10% of them rejected, exactly as before.
    And the recovery meets an RTO of 60 seconds

  Scenario Outline: Order latency above the SLO (<cause>) is detected
    When <cause>
    Then a P1 alert "OrderLatencyHigh" fires within 30 seconds

    Examples:
      | cause                                              |
      | the broker link gets 400 ms of latency             |
      | the broker link gets 300 ms of latency with 100 ms jitter |
