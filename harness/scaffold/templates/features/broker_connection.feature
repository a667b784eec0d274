@q2 @p0 @broker
Feature: Broker connection lost
  Starter drill for the runbook section "Broker Connection Lost" (written by `drill init`).
  The link named "broker" is the one declared under x-drill.links in the stack file; the reconnect
  command is x-drill.trading.commands.reconnect.

  Background:
    Given the trading stack is running in lab mode
    And the trading engine is connected to the broker

  Scenario: The broker link goes down; the on-call reconnects once it is back
    When the broker link goes down
    Then a P0 alert "BrokerManualInterventionRequired" fires within 40 seconds
    When the broker link is restored
    And the on-call runs the stack's "reconnect" command
    Then the trading engine is connected to the broker within 30 seconds
    And the trading engine's positions match the broker's
    And the recovery meets an RTO of 120 seconds
