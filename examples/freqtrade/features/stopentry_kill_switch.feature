@p3 @kill_switch
Feature: stopentry as the kill switch
  Runbook section "Kill Switch (stopbuy)". `freqtrade-client stopbuy` (the API's stopentry) pauses
  the bot: no new entry, while open trades still exit on their own rules.

  Background:
    Given the trading stack is running in live mode
    And the trading engine holds open positions

  Scenario: stopentry stops new entries and lets the open trade exit
    When the on-call trips the kill switch by hand because "drill: venue incident"
    Then a P3 alert "FreqtradeEntriesStopped" fires within 20 seconds
    And the kill switch is still active
    And Freqtrade opens no new trade while its open trades exit within 120 seconds
    When the on-call follows runbook step 2 of "Kill Switch (stopbuy)"
    Then Freqtrade reports state "running"
