"""GameDay: the quarterly drill with people in the loop, derived from the project's ``@q1``..``@q4`` scenarios.

* :mod:`harness.gameday.plan`: which scenario, and its steps sorted into preconditions, fault,
  detections, checks, the on-call's response, recovery and follow-up;
* :mod:`harness.gameday.play`: those steps run through their real step functions, with the drill
  object of ``drill run`` (waits re-timed per thread, cancellable);
* :mod:`harness.gameday.session`: the people, the console, the watchers and the report;
* :mod:`harness.gameday.console`: input that never blocks the watchers.
"""

from harness.gameday.console import LineReader
from harness.gameday.plan import GameDayPlan, GameDayPlanError, PlanStep, load_plan
from harness.gameday.session import ROLES, GameDay, Options, run_gameday

__all__ = ["ROLES", "GameDay", "GameDayPlan", "GameDayPlanError", "LineReader", "Options", "PlanStep", "load_plan",
           "run_gameday"]
