@p2 @monitoring
Feature: Dashboard unavailable and metrics collection failing
  Runbook severity P2. The monitoring must notice its own failures: a dead dashboard pages, and a
  Prometheus that stops evaluating makes the always-firing Watchdog alert disappear, which is
  how a dead-man's switch signals trouble.

  Background:
    Given the trading stack is running in lab mode

  Scenario: The dashboard crashes and is restarted
    When the dashboard crashes
    Then a P2 alert "DashboardUnavailable" fires within 10 seconds
    When the on-call restarts the dashboard
    Then the "DashboardUnavailable" alert resolves within 20 seconds
    And the recovery meets an RTO of 40 seconds

  Scenario: Metrics collection stops: the Watchdog goes silent
    Given the "Watchdog" alert is firing
    When Prometheus freezes
    Then the "Watchdog" alert disappears within 20 seconds
    When Prometheus is thawed
    Then the "Watchdog" alert fires again within 15 seconds
    And the recovery meets an RTO of 45 seconds
