@p1 @stale_loop
Feature: Venue hangs
  Runbook section "Stale Loop". The venue accepts connections and answers nothing: each ccxt call
  waits for its timeout and is retried, the bot's main loop blocks and last_process goes stale.

  Background:
    Given the trading stack is running in live mode
    And the trading engine holds open positions

  Scenario: The venue stops answering; the stale loop is detected and Freqtrade recovers
    When the venue link stops answering
    Then a P1 alert "FreqtradeLoopStale" fires within 45 seconds
    When the on-call follows runbook step 1 of "Stale Loop"
    And the venue link is restored
    Then Freqtrade's main loop is fresh within 60 seconds
    And the "FreqtradeLoopStale" alert resolves within 60 seconds
    And the recovery meets an RTO of 120 seconds
