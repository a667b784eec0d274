"""The whole shared step library in one module, so one plugin registration makes every step visible.

A drill project loads it through the ``drill`` pytest plugin (or ``pytest_plugins =
["harness.steps.library"]`` in a conftest); the team's own step modules are loaded beside it.
"""

from harness.steps.alerts import *  # noqa: F403
from harness.steps.data import *  # noqa: F403
from harness.steps.faults import *  # noqa: F403
from harness.steps.nodes import *  # noqa: F403
from harness.steps.operator import *  # noqa: F403
from harness.steps.runbook import *  # noqa: F403
from harness.steps.stack import *  # noqa: F403
from harness.steps.trading import *  # noqa: F403
