@p1 @rate_limit
Feature: Rate-limit ban
  Runbook section "Rate-Limit Ban". The venue answers HTTP 418 to every request for a while.
  Freqtrade's DDosProtection back-off (1/2/5/10 s) must keep it from hammering the venue, which
  would only extend the ban.

  Background:
    Given the trading stack is running in live mode
    And the trading engine holds open positions

  Scenario: The venue bans Freqtrade with 418; the bot backs off and resumes after the ban
    When the venue bans Freqtrade with HTTP 418 for 30 seconds
    Then a P1 alert "FreqtradeRateLimitBan" fires within 20 seconds
    And the trading engine log shows "DDosProtection" within 20 seconds
    And Freqtrade backs off: at most 60 of its requests hit the ban
    And Freqtrade's requests reach the venue again within 30 seconds
    And the recovery meets an RTO of 75 seconds
