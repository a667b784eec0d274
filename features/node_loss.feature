@q4 @p0 @outage
Feature: A machine of the cluster drops off
  Quarterly drill Q4 (full system failure), for a trading stack spread over the machines of a cluster.
  One machine drops off the network at once, as when it loses power or its switch port, and nobody
  restarts anything by hand: the cluster must notice that the machine is gone and start every service it
  ran on the machine that is left, where the service answers at its old address. When the machine is
  back, the on-call does what the runbook says after a broker or market data outage, since a service that
  moved started afresh: reconnect the broker ("Broker Connection Lost" step 3) and re-fetch the market
  data ("Data SLA Violation" step 4: to the engine a restarted feed looks stale until then). Both are
  harmless when that service did not move. Then every service must be healthy, and the on-call checks
  what "Trading Engine Down" asks after any restart: nothing lost, nothing doubled.

  In the report, "detected in" (MTTD) is the moment the cluster marks the machine NotReady, and the RTO
  is the moment every service it ran answers again from the machine that is left (the rescheduling
  time). The step "the lost machine comes back" takes as long as the machine needs to rejoin (the
  rollback).

  This drill needs a Kubernetes cluster with at least two nodes: drill run --backend kubernetes, after
  bash scripts/k8s-setup.sh --nodes 2. On the process and docker backends, and on a one-node cluster,
  it is skipped and says why.

  Scenario: A machine drops off mid-trading; the services it ran come back on the machine that is left
    Given the trading stack runs on a cluster that can lose a machine
    And the trading stack is running in lab mode
    And the trading engine has sent at least 3 orders
    When the machine running most of the trading stack drops off the cluster
    Then the cluster marks the machine lost within 60 seconds
    And every service it ran is healthy on another machine within 120 seconds
    And the recovery meets an RTO of 120 seconds
    When the lost machine comes back
    And the on-call follows runbook step 3 of "Broker Connection Lost"
    And the on-call follows runbook step 4 of "Data SLA Violation"
    Then every service is healthy within 60 seconds
    And the on-call follows runbook step 3 of "Trading Engine Down"
    And no acknowledged order was lost
    And no order was filled twice
