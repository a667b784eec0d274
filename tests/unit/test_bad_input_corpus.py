"""The bad-input corpus (issue 11): each input through the real `drill` CLI (or the mock's operator CLI).

Each case is one kind of bad input a user under stress hands the harness. It is pinned to its
documented exit code (2 input, 3 environment, 4 safety; see harness/cli_shared.py) and to a message
that names the input (file:line, field, option), the problem and the fix. No case may print a
traceback, and none starts a stack: every one is answered before pytest starts, and nothing is
written for it. A few cases are the other half of a kind: a broken feature file that a run does
not select must not poison that run (exit 0).

Stack-file cases are one edit each of a small valid stack (``BASE_STACK``); drill-project cases are
files laid over a small valid project (``BASE_PROJECT``). ``{tmp}`` in arguments and expected text is
the case's temporary directory. Count the kinds (every test but the one that counts them):
``pytest tests/unit/test_bad_input_corpus.py --collect-only -q | grep '::' | grep -vc covers_at_least``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "fixtures" / "bad-input"
BIN = Path(sys.executable).parent
BASE_STACK = (ROOT / "fixtures" / "stacks" / "tiny-stack.yml").read_text().replace(
    "  workdir: web\n", "  mode: {env: TINY_MODE, default: lab}\n  workdir: web\n"
)
TRADING = "  workdir: web\n  trading:\n"  # where an x-drill.trading case adds its declaration (line 7 on)
BASE_TOML = f'features = "features"\nstack = "{ROOT / "docker-compose.yml"}"\n'
BASE_PROJECT: Mapping[str, str | bytes] = {
    "drill.toml": BASE_TOML,
    "features/ok.feature": "@q1 @p0\nFeature: A drill that plans cleanly\n  Scenario: The stack starts\n"
    "    Given the trading stack is running in lab mode\n",
}
BROKEN_GHERKIN = "Feature: Broken\n  Scenario: x\n    Given the trading stack is running in lab mode\n    Examples oo\n"
TEAM_FAULT = (
    "from harness.faults.base import Fault\nfrom harness.faults.registry import register_fault\n\n"
    "@register_fault\nclass MyKill(Fault):\n{body}"
)


def steps(step: str, mode: str = "lab") -> str:
    """A feature whose scenario starts the stack, then takes ``step`` (line 5)."""
    return (f"@q1\nFeature: A step naming what the stack lacks\n  Scenario: One step\n"
            f"    Given the trading stack is running in {mode} mode\n    {step}\n")


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    never: tuple[str, ...] = ()
    stack: tuple[str, str] | None = None  # (old, new): BASE_STACK with this edit, at {tmp}/stack.yml
    project: Mapping[str, str | bytes] | None = None  # files over BASE_PROJECT in {tmp}/project, run from there
    tool: str = "drill"


def stack(old: str, new: str) -> tuple[str, str]:
    assert old in BASE_STACK, old
    return (old, new)


def trading(declaration: str) -> tuple[str, str]:
    """An x-drill.trading declaration (indented under ``trading:``) added to the base stack."""
    return stack("  workdir: web\n", TRADING + "".join(f"    {line}\n" for line in declaration.splitlines()))


DRY = ("run", "--dry-run", "--stack-file", "{tmp}/stack.yml")  # a stack case, from this repository's project
AT = "{tmp}/stack.yml"
TOML = "{tmp}/project/drill.toml"

CASES = [
    # --- the command line ------------------------------------------------------------------------------
    Case("unknown-backend", ("run", "--backend", "k8s"), 2,
         ("unknown backend 'k8s'", "observed: --backend k8s", "attach, docker, kubernetes, process")),
    Case("broken-tags", ("run", "--tags", "p0 and"), 2,
         ("'(p0 and)' is not a valid expression", "combine tags with and / or / not"), never=("running",)),
    Case("unknown-tag", ("run", "--tags", "p9"), 2, ("--tags", "unknown tag(s) p9", "the tags of this drill project")),
    Case("unknown-quarter", ("run", "--quarter", "Q5"), 2, ("--quarter", "'Q5' is not a quarter", "Q1, Q2, Q3, Q4")),
    Case("workers-zero", ("run", "-n", "0"), 2, ("'-n' / '--workers'", "a positive number of workers or 'auto'",
                                                  "observed '0'")),
    Case("workers-not-a-number", ("run", "-n", "many"), 2, ("'-n' / '--workers'", "observed 'many'")),
    Case("unwritable-report", ("run", "--report", "/proc/drill-report"), 2,
         ("cannot write the report directory /proc/drill-report", "pass --report with a directory you can write")),
    Case("missing-feature-path", ("run", "features/nope.feature"), 2,
         ("no feature file or directory at features/nope.feature", "pass a .feature file or a folder")),
    Case("stack-file-not-found", ("run", "--dry-run", "--stack-file", "{tmp}/nope.yml"), 2,
         ("{tmp}/nope.yml: stack file not found", "pass --stack-file PATH")),
    Case("gameday-unknown-quarter", ("gameday", "Q5"), 2, ("expected a quarter Q1..Q4, observed 'Q5'",
                                                           "drill gameday Q2")),
    # --- safety (exit 4, also for --dry-run) -------------------------------------------------------------
    Case("live-mode", ("run", "--quarter", "Q1", "--dry-run"), 4,
         ("its mode is live (environment TR_MODE)", "--allow-live"), env={"TR_MODE": "live"}, never=("--confirm",)),
    Case("unknown-mode-value", ("run", "--quarter", "Q1", "--dry-run"), 4,
         ("its mode 'prod' (environment TR_MODE) is none of lab, paper, live", "set TR_MODE=lab"),
         env={"TR_MODE": "prod"}),
    Case("live-by-default", DRY, 4, ("its mode is live (x-drill.mode default", "--allow-live"),
         stack=stack("default: lab", "default: live")),
    Case("no-mode", ("run", "--dry-run", "--stack-file", str(ROOT / "fixtures/stacks/tiny-stack.yml")), 4,
         ("mode (lab, paper or live) cannot be determined", "x-drill: {mode:")),
    # --- the stack file ----------------------------------------------------------------------------------
    Case("stack-not-yaml", DRY, 2, (f"{AT}:19: not valid YAML", "fix the YAML syntax"),
         stack=stack("  web:\n    x-drill:", "  web:\n   x-drill: [")),
    Case("stack-binary", DRY, 2, (f"{AT}: not UTF-8 text (byte offset", "a stack file is YAML text"),
         stack=stack("x-drill:", "\udcff")),
    Case("stack-a-list", DRY, 2, (f"{AT}: must be a Compose mapping with 'services:', got list",
                                  "docs/stack-contract.md"), stack=stack(BASE_STACK, "- web\n- client\n")),
    Case("stack-no-services", DRY, 2, (f"{AT}:2: services: is missing", "add a 'services:' mapping"),
         stack=stack("services:", "servics:")),
    Case("stack-no-x-drill", DRY, 2, (f"{AT}:2: x-drill: is missing", "add a 'x-drill:' mapping"),
         stack=stack("x-drill:\n  name: tiny", "x-drll:\n  name: tiny")),
    Case("stack-no-name", DRY, 2, (f"{AT}:3: x-drill.name: is missing", "add 'name: <text>'"),
         stack=stack("  name: tiny\n", "")),
    Case("stack-workdir-unknown", DRY, 2, (f"{AT}:5: x-drill.workdir: unknown service 'wbe'",
                                           "use one of: client, toxiproxy, web"),
         stack=stack("  workdir: web", "  workdir: wbe")),
    Case("stack-mode-unknown-default", DRY, 2, (f"{AT}:4: x-drill.mode.default: unknown mode 'prod'",
                                                "use one of: lab, paper, live"),
         stack=stack("default: lab", "default: prod")),
    Case("stack-runbook-missing", DRY, 2, (f"{AT}:6: x-drill.runbook: no runbook file at {{tmp}}/docs/nope.md",
                                           "relative to the stack file"),
         stack=stack("  workdir: web\n", "  workdir: web\n  runbook: docs/nope.md\n")),
    Case("stack-operator-unknown", DRY, 2, (f"{AT}:6: x-drill.operator.service: unknown service 'ctl'",
                                            "use one of: client, toxiproxy, web"),
         stack=stack("  workdir: web\n", "  workdir: web\n  operator: {service: ctl, command: [ctl]}\n")),
    Case("port-out-of-range", DRY, 2, (f"{AT}:18: services.web.x-drill.ports.http: must be a port number 1-65535, "
                                       "got 80800", "write e.g. 'http: 8080'"),
         stack=stack("ports: {http: 8080}", "ports: {http: 80800}")),
    Case("port-not-a-number", DRY, 2, (f"{AT}:18: services.web.x-drill.ports.http: must be a port number 1-65535, "
                                       "got 'web'",), stack=stack("ports: {http: 8080}", "ports: {http: web}")),
    Case("duplicate-port", DRY, 2, (f"{AT}:17: services.web.x-drill.ports: 'admin' and 'http' are both port 8080",
                                    "give each named port its own number"),
         stack=stack("ports: {http: 8080}", "ports: {http: 8080, admin: 8080}")),
    Case("unknown-role", DRY, 2, (f"{AT}:11: services.toxiproxy.x-drill.role: unknown role 'proxy'",
                                  "use one of: app, toxiproxy, prometheus, alertmanager"),
         stack=stack("role: toxiproxy", "role: proxy")),
    Case("health-port-undeclared", DRY, 2, (f"{AT}:19: services.web.x-drill.health.port: no port named 'htp'",
                                            "declare it under services.web.x-drill.ports"),
         stack=stack("health: {port: http, path: /}", "health: {port: htp, path: /}")),
    Case("empty-command", DRY, 2, (f"{AT}:21: services.web.x-drill.local.command: must be a non-empty list, got []",
                                   "write e.g. 'command: [program"),
         stack=stack('command: ["{{python}}", "-m"', 'command: []\n        x: ["{{python}}", "-m"')),
    Case("depends-on-unknown", DRY, 2, (f"{AT}:23: services.client.depends_on: unknown service 'wbe'",
                                        "known services: client, toxiproxy, web"),
         stack=stack("depends_on: [web]", "depends_on: [wbe]")),
    Case("depends-on-cycle", DRY, 2, (f"{AT}:24: services.client.depends_on: cycle web -> client -> web",
                                      "remove one depends_on entry of the cycle"),
         stack=stack("  web:\n    x-drill:", "  web:\n    depends_on: [client]\n    x-drill:")),
    Case("link-unknown-service", DRY, 2, (f"{AT}:7: x-drill.links.web.from: unknown service 'clinet'",
                                          "use one of: client, toxiproxy, web"),
         stack=stack("{from: client, to: web", "{from: clinet, to: web")),
    Case("link-unknown-port", DRY, 2, (f"{AT}:7: x-drill.links.web.port: service 'web' has no port named 'admin'",
                                       "its ports: http"),
         stack=stack("to: web, port: http}", "to: web, port: admin}")),
    Case("self-link", DRY, 2, (f"{AT}:7: x-drill.links.web: links 'web' to itself", "from) to the one"),
         stack=stack("{from: client, to: web", "{from: web, to: web")),
    Case("duplicate-listen-port", DRY, 2,
         (f"{AT}:8: x-drill.links.web2.listen_port: 21000 is already the listen_port of link 'web'",
          "give each link its own listen_port"),
         stack=stack("    web: {from: client, to: web, port: http}\n",
                     "    web: {from: client, to: web, port: http, listen_port: 21000}\n"
                     "    web2: {from: client, to: web, port: http, listen_port: 21000}\n")),
    Case("listen-port-zero", DRY, 2, (f"{AT}:7: x-drill.links.web.listen_port: must be a port number 1-65535, got 0",),
         stack=stack("to: web, port: http}", "to: web, port: http, listen_port: 0}")),
    # --- placeholders in local commands and templates ----------------------------------------------------
    Case("unknown-tool", DRY, 2, (f"{AT}:10", "{{tool.toxiproxyy}}", "no tool 'toxiproxyy'",
                                  "fix the placeholder's name"),
         stack=stack("{{tool.toxiproxy}}", "{{tool.toxiproxyy}}")),
    Case("unknown-port-placeholder", DRY, 2, (f"{AT}:17", "{{port.web.htpp}}", "has no port 'htpp' (its ports: http)"),
         stack=stack('"{{port.web.http}}"]', '"{{port.web.htpp}}"]')),
    Case("unknown-service-placeholder", DRY, 2, (f"{AT}:17", "{{port.wbe.http}}", "no service 'wbe'"),
         stack=stack('"{{port.web.http}}"]', '"{{port.wbe.http}}"]')),
    Case("unknown-link-placeholder", DRY, 2, (f"{AT}:23", "{{link.wbe}}", "no link 'wbe' (links: web)"),
         stack=stack('"{{link.web}}"]', '"{{link.wbe}}"]')),
    Case("unknown-placeholder-kind", DRY, 2, (f"{AT}:17", "{{prot.web.http}}", "'prot.web.http' is not a placeholder",
                                              "use port.S.P, addr.S.P, link.L"),
         stack=stack('"{{port.web.http}}"]', '"{{prot.web.http}}"]')),
    Case("missing-template", DRY, 2, (f"{AT}:23: services.client.x-drill.local.templates: cannot read nope.tmpl",
                                      "templates map a file relative to"),
         stack=stack("        env: {WEB_URL", "        templates: {nope.tmpl: x.yml}\n        env: {WEB_URL")),
    # --- the trading adapter (x-drill.trading) -----------------------------------------------------------
    Case("adapter-not-a-mapping", DRY, 2, (f"{AT}:6: x-drill.trading: must be a mapping, got list",
                                           "write 'trading:' followed by"),
         stack=stack("  workdir: web\n", "  workdir: web\n  trading: [positions]\n")),
    Case("adapter-unknown-reading", DRY, 2, (f"{AT}:7: x-drill.trading.holdings: unknown field",
                                             "fields allowed here: engine, connected, positions"),
         stack=trading("holdings: {file: state/holdings.json}")),
    Case("adapter-unknown-engine", DRY, 2, (f"{AT}:7: x-drill.trading.engine: unknown service 'wbe'",
                                            "use one of: client, toxiproxy, web"), stack=trading("engine: wbe")),
    Case("adapter-bad-pointer", DRY, 2, (f"{AT}:7: x-drill.trading.positions.pointer: a JSON pointer starts with '/', "
                                         "got 'positions'", "write e.g. /positions (RFC 6901)"),
         stack=trading("positions: {file: state/positions.json, pointer: positions}")),
    Case("adapter-missing-field", DRY, 2, (f"{AT}:7: x-drill.trading.orders.fields: missing symbol",
                                           "name the column/field for each of: symbol"),
         stack=trading("orders: {csv: 'orders/*.csv', fields: {key: id, qty: qty}}")),
    Case("adapter-unknown-record-field", DRY, 2, (f"{AT}:7: x-drill.trading.orders.fields.price: unknown field",
                                                  "fields known here: key, side, qty, symbol, time"),
         stack=trading("orders: {csv: 'orders/*.csv', fields: {key: id, qty: qty, symbol: s, price: px}}")),
    Case("adapter-two-sources", DRY, 2, (f"{AT}:7: x-drill.trading.sla: needs exactly one source", "got 2",
                                         "e.g. 'file: state/holdings.json'"),
         stack=trading("sla: {file: state/sla.json, command: engine-ctl sla}")),
    Case("adapter-http-unknown-port", DRY, 2, (f"{AT}:7: x-drill.trading.sla.http.port: service 'web' has no port "
                                               "named 'admin'", "its ports: http"),
         stack=trading("sla: {http: {service: web, port: admin, path: /sla}}")),
    Case("adapter-http-relative-path", DRY, 2, (f"{AT}:7: x-drill.trading.sla.http.path: must start with '/', "
                                                "got 'sla'", "e.g. /orders"),
         stack=trading("sla: {http: {service: web, port: http, path: sla}}")),
    Case("adapter-url-not-http", DRY, 2, (f"{AT}:7: x-drill.trading.sla.url: must be an http(s) URL, got 'ftp://x'",),
         stack=trading("sla: {url: 'ftp://x'}")),
    Case("adapter-unknown-marker", DRY, 2, (f"{AT}:7: x-drill.trading.markers.kill_switch_tripped: unknown name",
                                            "names known here: kill_switch_activated"),
         stack=trading("markers: {kill_switch_tripped: tripped}")),
    Case("adapter-unknown-fault-endpoint", DRY, 2, (f"{AT}:7: x-drill.trading.faults.feeds: unknown fault endpoint",
                                                    "names known here: feed, symbols"),
         stack=trading("faults: {feeds: {service: web, port: http, path: /faults}}")),
    Case("adapter-class-without-module", DRY, 2, (f"{AT}:7: x-drill.trading.adapter: must be 'package.module:Class', "
                                                  "got 'team.truth'", "e.g. team_drills.truth:FixDropCopy"),
         stack=trading("adapter: team.truth")),
    Case("adapter-class-not-importable", DRY, 2,
         (f"{AT}:7: x-drill.trading.adapter: cannot import module 'team_nope.truth': ModuleNotFoundError",
          "make the module importable"), stack=trading("adapter: 'team_nope.truth:Truth'")),
    # --- the drill project (drill.toml) and its own modules ----------------------------------------------
    Case("toml-syntax", ("run", "--dry-run"), 2, (f"{TOML}:1: not valid TOML", "fix the TOML syntax"),
         project={"drill.toml": 'features = "features\n'}),
    Case("toml-unknown-key", ("run", "--dry-run"), 2, (f"{TOML}: drill.toml: unknown key 'feature'",
                                                       "keys allowed: features, stack"),
         project={"drill.toml": 'feature = "features"\n'}),
    Case("toml-features-not-a-string", ("run", "--dry-run"), 2,
         (f"{TOML}: drill.toml.features must be a non-empty string, got 3", 'write features = "features"'),
         project={"drill.toml": "features = 3\n"}),
    Case("toml-steps-not-a-list", ("run", "--dry-run"), 2,
         (f"{TOML}: drill.toml.steps must be a list of module names, got 'team.steps'",
          'write e.g. steps = ["team_drills.steps"]'), project={"drill.toml": 'steps = "team.steps"\n'}),
    Case("toml-steps-bad-module-name", ("run", "--dry-run"), 2,
         (f"{TOML}: drill.toml.steps must be a list of module names, got ['team-steps']",),
         project={"drill.toml": 'steps = ["team-steps"]\n'}),
    Case("toml-tags-not-a-table", ("run", "--dry-run"), 2,
         (f"{TOML}: drill.toml.tags must be a table", "write a [tags] table"),
         project={"drill.toml": 'tags = ["a"]\n'}),
    Case("toml-tag-without-description", ("run", "--dry-run"), 2,
         (f"{TOML}: drill.toml.tags.payments: expected a tag name", "got 3", 'write payments = "runbook section'),
         project={"drill.toml": "[tags]\npayments = 3\n"}),
    Case("toml-runbook-missing", ("run", "--dry-run"), 2,
         (f"{TOML}: drill.toml.runbook: no file at {{tmp}}/project/docs/nope.md", "relative to the project root"),
         project={"drill.toml": 'runbook = "docs/nope.md"\n'}),
    Case("toml-unknown-backend", ("run", "--dry-run"), 2,
         ("unknown backend 'k8s'", f"observed: backend = 'k8s' in {TOML}", "fix it there, or pass --backend"),
         project={"drill.toml": f'backend = "k8s"\nstack = "{ROOT / "docker-compose.yml"}"\n'}),
    Case("toml-features-dir-missing", ("run", "--dry-run"), 2,
         ("no feature file or directory at {tmp}/project/nope", "pass a .feature file or a folder"),
         project={"drill.toml": f'features = "nope"\nstack = "{ROOT / "docker-compose.yml"}"\n'}),
    Case("features-dir-empty", ("run", "--dry-run"), 2,
         ("no .feature file in empty (features in {tmp}/project/drill.toml)", "drill init` writes starters"),
         project={"drill.toml": f'features = "empty"\nstack = "{ROOT / "docker-compose.yml"}"\n', "empty/.keep": ""}),
    Case("steps-module-fails-to-import", ("run", "--dry-run"), 2,
         (f"{TOML}: steps module 'team_steps' failed to import: ModuleNotFoundError: No module named 'nonexistent'",
          "fix the module, or remove it from 'steps'"),
         project={"drill.toml": BASE_TOML + 'steps = ["team_steps"]\n',
                  "team_steps.py": "import nonexistent\n"}),
    Case("fault-kind-clash", ("run", "--dry-run"), 2,
         (f"{TOML}: faults module 'team_faults' failed to import",
          "fault kind 'kill' of team_faults.MyKill is already registered by harness.faults.service.Kill",
          "choose another kind name"),
         project={"drill.toml": BASE_TOML + 'faults = ["team_faults"]\n',
                  "team_faults.py": TEAM_FAULT.format(body="    kind = 'kill'\n")}),
    Case("fault-without-kind", ("run", "--dry-run"), 2,
         ("fault class team_faults.MyKill has no 'kind'", 'give it a class attribute kind = "my_fault"'),
         project={"drill.toml": BASE_TOML + 'faults = ["team_faults"]\n',
                  "team_faults.py": TEAM_FAULT.format(body="    pass\n")}),
    # --- features ----------------------------------------------------------------------------------------
    Case("undefined-step", ("run", "--dry-run", str(ROOT / "fixtures/features/bad/undefined_step.feature")), 2,
         ("undefined_step.feature:5: undefined step: When the on-call reboots the mainframe",
          "fix them (`drill lint` lists them all)")),
    Case("missing-examples-column", ("run", "--dry-run", str(BAD / "missing_examples_column.feature")), 2,
         ("missing_examples_column.feature:4", "<failur> has no column"), never=("undefined step",)),
    Case("unregistered-tag", ("run", "--dry-run", str(ROOT / "fixtures/features/bad/unregistered_tag.feature")), 2,
         ("unregistered_tag.feature:2: tag @nightly_chaos is not a registered marker",)),
    Case("deadline-in-words", ("run", "--dry-run", str(ROOT / "fixtures/features/bad/bad_deadline.feature")), 2,
         ("bad_deadline.feature:5: deadline 'within five seconds' is not a number of seconds",)),
    Case("empty-feature", ("run", "--dry-run", str(BAD / "empty.feature")), 2,
         ("empty.feature:1: empty: expected a 'Feature:' line", "write the feature or remove the file")),
    Case("binary-feature", ("run", "--dry-run", str(BAD / "binary.feature")), 2,
         ("binary.feature:1: not UTF-8", "remove or rename this file")),
    Case("not-gherkin", ("run", "--dry-run", str(ROOT / "fixtures/features/bad/not_gherkin.feature")), 2,
         ("not_gherkin.feature:5: cannot parse", "fix the Gherkin syntax")),
    Case("broken-feature-listed", ("list",), 2, ("{tmp}/project/features/zz.feature:4: cannot parse",),
         project={"features/zz.feature": BROKEN_GHERKIN}),
    Case("syntax-error-not-selected", ("run", "--dry-run", "features/ok.feature"), 0,
         ("planned The stack starts",), project={"features/zz.feature": BROKEN_GHERKIN}),
    Case("empty-feature-not-selected", ("run", "--dry-run", "features/ok.feature"), 0,
         ("planned The stack starts",), project={"features/zz.feature": ""}),
    Case("binary-feature-not-selected", ("run", "--dry-run", "features/ok.feature"), 0,
         ("planned The stack starts",), project={"features/zz.feature": b"\xff\xfe\x00\x01"}),
    Case("step-names-unknown-link", ("run", "--dry-run"), 2,
         ("features/zz.feature:5: step 'the brokr link goes down': no link 'brokr' in stack 'mockstack'",
          "(its links: 'broker', 'marketdata')"),
         project={"features/zz.feature": steps("When the brokr link goes down")}),
    Case("step-names-unknown-service", ("run", "--dry-run"), 2,
         ("features/zz.feature:5: step 'the trading engin crashes': no service called 'trading engin'",
          "services are called: 'Alertmanager'"),
         project={"features/zz.feature": steps("When the trading engin crashes")}),
    Case("step-names-unknown-mode", ("run", "--dry-run"), 2,
         ("features/zz.feature:4: step 'the trading stack is running in prod mode': mode 'prod' is none of lab, "
          "paper, live",), project={"features/zz.feature": steps("", mode="prod")}),
    Case("step-names-unknown-runbook-section", ("run", "--dry-run"), 2,
         ("features/zz.feature:5:", "has no section called 'Kill Swtch Triggered'",
          "sections with steps: 'Kill Switch Triggered'"),
         project={"features/zz.feature": steps('When the on-call follows runbook step 2 of "Kill Swtch Triggered"')}),
    Case("step-names-unknown-runbook-step", ("run", "--dry-run"), 2,
         ("features/zz.feature:5:", "section 'Kill Switch Triggered' has no step 42", "its steps: 1 (Confirm"),
         project={"features/zz.feature": steps('When the on-call follows runbook step 42 of "Kill Switch Triggered"')}),
    Case("zero-width-space", ("lint", str(BAD / "zero_width_alert.feature")), 2,
         ("zero_width_alert.feature:4", "U+200B ZERO WIDTH SPACE")),
    Case("confusable-letter", ("lint", "features/zz.feature"), 2,
         ("features/zz.feature:4", "'KillSwitchАctive' mixes Latin with look-alike letters",
          "U+0410 CYRILLIC CAPITAL LETTER A"),
         project={"features/zz.feature": "@p0\nFeature: Confusable\n  Scenario: x\n"
                  '    Then a P0 alert "KillSwitch\u0410ctive" fires within 5 seconds\n'}),
    Case("bidi-mark-in-scenario-name", ("lint", "features/zz.feature"), 2,
         ("features/zz.feature:3 scenario name: U+202E RIGHT-TO-LEFT OVERRIDE",),
         project={"features/zz.feature": "@p0\nFeature: Bidi\n  Scenario: reset \u202eby hand\n"
                  "    Given the trading stack is running in lab mode\n"}),
    # --- runbooks, reports, maintenance ------------------------------------------------------------------
    Case("empty-runbook", ("lint", "--runbook", str(BAD / "empty_runbook.md")), 2, ("no section with steps",)),
    Case("runbook-without-steps", ("lint", "--runbook", str(BAD / "runbook_without_sections.md")), 2,
         ("no section with steps (1 heading(s), 0 steps)",)),
    Case("runbook-missing", ("lint", "--runbook", "{tmp}/nope.md"), 2,
         ("runbook not found: {tmp}/nope.md", "pass the runbook's path")),
    Case("runbook-binary", ("lint", "--runbook", str(BAD / "binary.feature")), 2,
         ("cannot read runbook", "binary.feature", "it must be a UTF-8 Markdown file")),
    Case("coverage-of-an-empty-runbook", ("coverage",), 2,
         ("{tmp}/project/docs/runbook.md: no section with steps (0 heading(s))", "drill lint --runbook"),
         project={"drill.toml": BASE_TOML + 'runbook = "docs/runbook.md"\n', "docs/runbook.md": "\n"}),
    Case("report-without-journal", ("report", "{tmp}"), 2,
         ("observed no journal in {tmp}", "pass the --report directory of a `drill run`")),
    Case("report-journal-cut-short", ("report", "{tmp}/project/rep"), 2,
         ("{tmp}/project/rep/journal.json:1: expected JSON", "re-run the drill"),
         project={"rep/journal.json": '{"version": 1, "scen'}),
    Case("report-journal-version", ("report", "{tmp}/project/rep"), 2,
         ("{tmp}/project/rep/journal.json: expected a drill journal of version 1, observed version 99",),
         project={"rep/journal.json": '{"version": 99}'}),
    Case("init-would-overwrite", ("init", "."), 2,
         ("drill init would overwrite {tmp}/project/drill.toml", "nothing was written"), project={}),
    Case("force-without-run", ("cleanup", "--force"), 2, ("--force needs the live run named",)),
    Case("cleanup-unknown-run-dir", ("cleanup", "--run-dir", "/nonexistent/run"), 2,
         ("no stack was started in /nonexistent/run", "check --run-dir")),
    Case("halt-unknown-run-dir", ("halt", "--run-dir", "/nonexistent/run"), 2,
         ("no stack was started in /nonexistent/run", "check --run-dir")),
    Case("stack-status-unknown-run-dir", ("stack", "status", "--run-dir", "/nonexistent/run"), 2,
         ("no stack was started in /nonexistent/run", "`drill stack up` prints the run directory")),
    Case("stack-state-corrupt", ("stack", "status", "--run-dir", "{tmp}/project/runs/manual"), 2,
         ("{tmp}/project/runs/manual/stack.json:1: corrupt stack state", "drill stack up"),
         project={"runs/manual/stack.json": '{"backend": "proc'}),
    # --- the mock's operator CLI -------------------------------------------------------------------------
    Case("operator-risk-limit-not-a-number", ("--workdir", "{tmp}/project", "status"), 2,
         ("risk.yml: field 'max_daily_loss'", "lots"), never=("nan",), tool="traderunner",
         project={"configs/risk.yml": "max_daily_loss: lots\n", "configs/strategy.yml": ""}),
]  # fmt: skip


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def _prepare(case: Case, tmp: Path) -> Path:
    """Write the case's stack or project under ``tmp``; the directory to run from."""
    if case.stack is not None:
        old, new = case.stack
        text = BASE_STACK.replace(old, new, 1)
        (tmp / "stack.yml").write_bytes(text.encode("utf-8", errors="surrogateescape"))
    if case.project is None:
        return ROOT  # this repository: its own drill project
    project = tmp / "project"
    files = dict(case.project) if case.tool != "drill" else {**BASE_PROJECT, **case.project}
    for name, content in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    project.mkdir(exist_ok=True)
    return project


def run_cli(tool: str, args: tuple[str, ...], cwd: Path, env: Mapping[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "TR_MODE"} | dict(env or {})
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_answered_with_its_code_and_names_the_input(case: Case, tmp_path: Path) -> None:
    cwd = _prepare(case, tmp_path)
    args = tuple(_fill(a, tmp_path) for a in case.args)
    report = tmp_path / "report"
    if case.tool == "drill" and args[0] == "run" and "--report" not in args:
        args = (*args, "--report", str(report))
    result = run_cli(case.tool, args, cwd, case.env)
    out = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert result.returncode == case.code, out
    for text in case.says:
        assert _fill(text, tmp_path) in out, out
    for text in case.never:
        assert text not in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    if case.code != 0:
        assert not report.exists(), "nothing may be written or started for bad input"


def test_the_corpus_covers_at_least_51_kinds_of_bad_input() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids)
    assert len(ids) + 3 >= 51  # + the ledger, the unknown fault kind and the truncated runtime state below


def _run_dir_with_ledger(tmp_path: Path, ledger: str) -> Path:
    run_dir = tmp_path / "runs" / "manual"
    run_dir.mkdir(parents=True)
    state = {"backend": "process", "run_id": "drill-corpus", "stack_file": str(ROOT / "docker-compose.yml"),
             "status": "up", "owner": None, "env": {}, "ports": {}, "links": {}, "services": {}}  # fmt: skip
    (run_dir / "stack.json").write_text(json.dumps(state))
    (run_dir / "ledger.jsonl").write_text(ledger)
    return run_dir


def test_a_ledger_that_cannot_be_read_in_full_fails_cleanup_with_2_naming_the_line(tmp_path: Path) -> None:
    run_dir = _run_dir_with_ledger(tmp_path, '{"seq": 1, "action": "injected", "kind": "link_d\n')
    result = run_cli("drill", ("cleanup", "--run-dir", str(run_dir)), tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, out
    assert "NOT REVERTED: ledger.jsonl line 1 cannot be read" in out and "link_d" in out
    assert "Traceback" not in out


def test_a_fault_kind_its_team_module_does_not_register_fails_cleanup_naming_both(tmp_path: Path) -> None:
    record = {"fault_id": "f1", "kind": "my_fault", "module": "team_faults", "description": "my fault on engine"}
    line = {"seq": 1, "action": "injected", "fault_id": "f1", "kind": "my_fault", "record": record, "pid": 1}
    run_dir = _run_dir_with_ledger(tmp_path, json.dumps(line) + "\n")
    (tmp_path / "team_faults.py").write_text("VERSION = 1  # defines no fault\n")
    result = run_cli("drill", ("cleanup", "--run-dir", str(run_dir)), tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, out  # a fault that could not be reverted: cleanup failed
    assert "FAILED: my fault on engine" in out
    assert "unknown fault kind 'my_fault' (its module 'team_faults' registers no such kind)" in out
    assert "@register_fault" in out and "Traceback" not in out


def test_a_truncated_runtime_state_reads_as_unknown_not_as_not_running(tmp_path: Path) -> None:
    from mockstack.traderunner import exports
    from mockstack.traderunner.store import Store

    Store.open_in(tmp_path).close()
    (tmp_path / exports.RUNTIME).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / exports.RUNTIME).write_text('{"pid": 12, "http_u')
    result = run_cli("traderunner", ("--workdir", str(tmp_path), "status"), tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, out
    assert "runtime.json" in out and "whether the service runs is unknown" in out
    assert "service: unknown" in out and "NOT RUNNING" not in out and "Traceback" not in out
