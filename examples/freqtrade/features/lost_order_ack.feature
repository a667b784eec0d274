@p0 @diverged
Feature: Lost order acknowledgement
  Runbook section "Diverged Trades". The venue executes Freqtrade's exit order but the reply never
  arrives: create_order is not retried, the venue has sold, and the bot still shows the trade open.
  The runbook's reload step fetches the trade's orders from the venue and reconciles.

  Background:
    Given the trading stack is running in live mode
    And the trading engine holds open positions

  Scenario: The venue fills an exit whose reply is lost; reloading the trade reconciles bot and venue
    When Freqtrade's exit order for a fresh trade is executed by the venue but its reply is lost
    Then Freqtrade still shows the trade open while the venue has filled its exit
    And a P0 alert "FreqtradeTradesDiverged" fires within 30 seconds
    When the on-call reloads the trade from the venue
    Then the trading engine log shows "Found previously unknown order" within 20 seconds
    And Freqtrade closes the trade with exit reason "sold_on_exchange" within 30 seconds
    And the "FreqtradeTradesDiverged" alert resolves within 60 seconds
    And no acknowledged order was lost
    And no order was filled twice
    And the recovery meets an RTO of 120 seconds
