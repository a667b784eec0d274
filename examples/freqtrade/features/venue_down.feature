@p1 @venue
Feature: Venue unreachable
  Runbook section "Venue Unreachable". The venue refuses every connection: Freqtrade raises
  ExchangeNotAvailable and retries, stays RUNNING, and its own health does not show the fault, so
  the alert must come from outside. When the venue is back, the bot's next loop succeeds by itself.

  Background:
    Given the trading stack is running in live mode
    And the trading engine holds open positions

  Scenario: The venue refuses connections; the alert fires and Freqtrade recovers by itself
    When the venue link goes down
    Then a P1 alert "FreqtradeVenueUnreachable" fires within 15 seconds
    And the trading engine log shows "NetworkError" within 15 seconds
    And Freqtrade reports state "running"
    When the on-call follows runbook step 1 of "Venue Unreachable"
    And the venue link is restored
    Then Freqtrade's requests reach the venue again within 30 seconds
    And the "FreqtradeVenueUnreachable" alert resolves within 60 seconds
    And the recovery meets an RTO of 60 seconds
