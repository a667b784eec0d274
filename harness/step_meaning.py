"""What a scenario's step texts assert: its severity, whether it recovers, its RTO target.

One place reads these from Gherkin step texts, so ``drill lint`` (before a run), the console table
and every report (after it) agree:

* **severity** is what the scenario asserts: the severity of its first expected alert
  (``Then a P1 alert "X" fires``), falling back to its ``@p0..@p3`` tag when it expects no alert;
* a **recovery step** is a step the step library times as the end of the incident (an alert
  resolves or fires again, every service is healthy, the SLA is ``ok`` again, the engine is
  reconnected, trading resumes);
* an **RTO target** is stated by ``... an RTO of N seconds``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SEVERITY_TAGS = ("p0", "p1", "p2", "p3")
ALERT_STEP = re.compile(r'an? (?P<severity>P\d) alert "(?P<alert>[^"]+)" fires(?: within (?P<within>[\d.]+) seconds?)?')
RECOVERY_STEP = re.compile(
    r'alert resolves within|alert fires again within|every service is healthy within|shows status "ok" within'
    r"|is connected to the broker within|trading resumes within"
)
RTO_STEP = re.compile(r"\ban RTO of (?P<value>[\d.]+) (?P<unit>seconds?|minutes?)\b")
NO_RECOVERY = "no recovery step"


def tag_severity(tags: Iterable[str]) -> str:
    """``P0``..``P3`` from the tags (the most severe when several), ``""`` when none."""
    return next((t.upper() for t in sorted(set(tags)) if t in SEVERITY_TAGS), "")


def asserted_severity(step_texts: Iterable[str]) -> str:
    """The severity of the first alert the steps expect, ``""`` when they expect none."""
    for text in step_texts:
        m = ALERT_STEP.search(text)
        if m:
            return m.group("severity").upper()
    return ""


def severity(tags: Iterable[str], step_texts: Iterable[str]) -> str:
    """What the scenario asserts (its first alert's severity), falling back to its tag."""
    return asserted_severity(step_texts) or tag_severity(tags)


def has_recovery(step_texts: Iterable[str]) -> bool:
    return any(RECOVERY_STEP.search(t) for t in step_texts)


def rto_target_s(step_texts: Iterable[str]) -> float | None:
    """The RTO target the steps state, in seconds; None when they state none."""
    for text in step_texts:
        m = RTO_STEP.search(text)
        if m:
            return float(m.group("value")) * (60 if m.group("unit").startswith("minute") else 1)
    return None
