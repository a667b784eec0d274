@q2 @p0 @broker
Feature: Broker connection lost
  Runbook section "Broker Connection Lost".
  When the link to the broker breaks, the trading engine notices within its heartbeat timeout,
  tries to reconnect 3 times, then stops sending orders and asks for a human. After the network is
  back, the on-call reconnects by hand and the engine reconciles its positions with the broker.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine is connected to the broker

  Scenario Outline: The broker link <failure>; after 3 attempts the engine asks for manual intervention
    When the broker link <failure>
    Then the trading engine log shows "Reconnect attempt 3/3 failed" within 20 seconds
    And a P0 alert "BrokerManualInterventionRequired" fires within 5 seconds
    And no new order is sent for 2 seconds
    When the on-call follows runbook step 1 of "Broker Connection Lost"
    Then its output shows "manual intervention required"
    When the broker link is restored
    And the on-call follows runbook step 3 of "Broker Connection Lost"
    Then the trading engine is connected to the broker within 10 seconds
    And the on-call follows runbook step 4 of "Broker Connection Lost"
    And the trading engine's positions match the broker's
    And the recovery meets an RTO of 60 seconds

    Examples:
      | failure                 |
      | goes down               |
      | stops answering         |
      | resets every connection |

  @p1
  Scenario: A silent network stall is reported as a connection timeout
    When the broker link stops answering
    Then the trading engine log shows "Connection timeout" within 5 seconds
    And a P1 alert "BrokerDisconnected" fires within 8 seconds
