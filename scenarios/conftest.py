"""Makes every step of the library visible to every feature."""

from scenarios.steps.alerts import *  # noqa: F403
from scenarios.steps.data import *  # noqa: F403
from scenarios.steps.faults import *  # noqa: F403
from scenarios.steps.operator import *  # noqa: F403
from scenarios.steps.runbook import *  # noqa: F403
from scenarios.steps.stack import *  # noqa: F403
from scenarios.steps.trading import *  # noqa: F403
