"""What the features say and what the step library offers: parsing, listing and linting drills.

pytest-bdd only finds an undefined step when the scenario runs; ``drill lint`` finds it before:
every step of every feature must match exactly one step definition of its type, every tag must
be a registered marker, and every deadline/RTO must parse.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.bdd import Feature, StepFunctionContext, parse_feature_file, step_definitions
from harness.errors import FeatureError
from harness.project import DrillProject, current_project

if TYPE_CHECKING:
    from harness.runbook.parser import Runbook
    from harness.stack import StackDescription

STEP_PACKAGE = "harness.steps"
DEADLINE = re.compile(r"within (?:an RTO of )?(?P<value>\S+) (?P<unit>seconds?|minutes?|ms)\b")
NUMBER = re.compile(r"^\d+(\.\d+)?$")


@dataclass(frozen=True)
class ScenarioInfo:
    feature: str
    feature_file: Path
    name: str
    line: int
    tags: tuple[str, ...]
    deadlines: tuple[str, ...]
    examples: int


@dataclass(frozen=True)
class StepDef:
    type: str
    pattern: str
    doc: str
    where: str
    context: StepFunctionContext


@dataclass(frozen=True)
class LintProblem:
    location: str
    message: str
    level: str = "error"  # error (drill lint exits 2) | warning (printed; the features still pass)

    @property
    def is_error(self) -> bool:
        return self.level == "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def feature_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(path.rglob("*.feature")))
        elif path.suffix == ".feature" and path.exists():
            out.append(path)
        else:
            raise FeatureError(
                f"no feature file or directory at {path}", hint="pass a .feature file or a folder of them"
            )
    return out


def parse_feature(path: Path) -> Feature:
    """The parsed feature, or :class:`FeatureError` with file:line: empty, not text, or not Gherkin."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FeatureError(f"cannot read: {exc.strerror}", location=str(path)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FeatureError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            location=f"{path}:{line}",
            hint="a feature file is Gherkin text; remove or rename this file",
        ) from exc
    if not any(ln.strip() and not ln.strip().startswith("#") for ln in text.splitlines()):
        raise FeatureError(
            "empty: expected a 'Feature:' line", location=f"{path}:1", hint="write the feature or remove the file"
        )
    try:
        return parse_feature_file(path)
    except Exception as exc:  # the gherkin parser raises its own error types with line numbers
        match = re.search(r"\((\d+):\d+\)|Line number: (\d+)", str(exc))
        location = f"{path}:{match.group(1) or match.group(2)}" if match else str(path)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeatureError(f"cannot parse: {first}", location=location, hint="fix the Gherkin syntax") from exc


def scenarios(paths: Iterable[Path]) -> list[ScenarioInfo]:
    out: list[ScenarioInfo] = []
    for path in feature_files(paths):
        feature = parse_feature(path)
        for sc in feature.scenarios.values():
            texts = [s.name for s in sc.steps]
            deadlines = tuple(m.group(0) for t in texts for m in DEADLINE.finditer(t))
            examples = sum(len(e.examples) for e in sc.examples) if sc.examples else 0
            out.append(
                ScenarioInfo(
                    feature=feature.name,
                    feature_file=path,
                    name=sc.name,
                    line=sc.line_number,
                    tags=tuple(sorted(set(feature.tags) | set(sc.tags))),
                    deadlines=deadlines,
                    examples=examples,
                )
            )
    return out


def load_step_library(project: DrillProject | None = None) -> list[StepDef]:
    """Import the shared step library and the project's own step modules; list their step definitions."""
    project = project or current_project()
    pkg = importlib.import_module(STEP_PACKAGE)
    for mod in pkgutil.iter_modules(pkg.__path__, STEP_PACKAGE + "."):
        importlib.import_module(mod.name)
    project.import_modules()
    owners = (STEP_PACKAGE, *project.steps)
    harness_root = Path(pkg.__file__ or ".").resolve().parent.parent.parent
    defs: list[StepDef] = []
    seen: set[tuple[str, str, str]] = set()
    for ctx in step_definitions():
        func = ctx.step_func
        if not any(func.__module__ == o or func.__module__.startswith(o + ".") for o in owners):
            continue
        source = Path(inspect.getsourcefile(func) or "?").resolve()
        line = inspect.getsourcelines(func)[1]
        where = f"{source}:{line}"
        for base in (project.root, harness_root):
            if source.is_relative_to(base):
                where = f"{source.relative_to(base)}:{line}"
                break
        pattern = str(getattr(ctx.parser, "name", ctx.parser))
        key = (ctx.type or "step", pattern, where)
        if key in seen:  # the same definition registered again (its module imported anew): not ambiguous
            continue
        seen.add(key)
        defs.append(StepDef(ctx.type or "step", pattern, inspect.getdoc(func) or "", where, ctx))
    return sorted(defs, key=lambda d: (("given", "when", "then", "step").index(d.type), d.pattern))


def registered_markers(project: DrillProject | None = None) -> set[str]:
    """The tags a feature may carry: q1..q4, p0..p3 and the drill project's own ``tags``."""
    return set((project or current_project()).markers)


def lint(paths: Iterable[Path], defs: list[StepDef] | None = None) -> list[LintProblem]:
    """Every problem that would only surface at run time, with file:line."""
    defs = load_step_library() if defs is None else defs
    markers = registered_markers()
    problems: list[LintProblem] = []
    for path in feature_files(paths):
        feature = parse_feature(path)
        text_problems = _text_problems(path, feature)
        problems += text_problems
        missing_columns = {p.location for p in text_problems if "has no column" in p.message}
        for tag in sorted(feature.tags - markers):
            problems.append(LintProblem(f"{path}:{feature.line_number}", f"tag @{tag} is not a registered marker"))
        for sc in feature.scenarios.values():
            for tag in sorted(set(sc.tags) - markers):
                problems.append(LintProblem(f"{path}:{sc.line_number}", f"tag @{tag} is not a registered marker"))
            rendered = _rendered_steps(sc)
            problems.extend(_meaning_problems(path, feature, sc, rendered))
            for step_type, text, line in rendered:
                where = f"{path}:{line}"
                if where in missing_columns:
                    continue  # already reported as the missing column, not as an "undefined step <x>"
                matches = [d for d in defs if d.type in (step_type, "step") and d.context.parser.is_matching(text)]
                if not matches:
                    problems.append(LintProblem(where, f"undefined step: {step_type.capitalize()} {text}"))
                elif len(matches) > 1:
                    both = ", ".join(d.where for d in matches)
                    problems.append(
                        LintProblem(where, f"ambiguous step '{text}' matches {len(matches)} definitions: {both}")
                    )
                for m in DEADLINE.finditer(text):
                    if not NUMBER.match(m.group("value")):
                        problems.append(
                            LintProblem(where, f"deadline '{m.group(0)}' is not a number of {m.group('unit')}")
                        )
    return problems


def _meaning_problems(
    path: Path, feature: Feature, sc: object, rendered: list[tuple[str, str, int]]
) -> list[LintProblem]:
    """Severity tag vs the alert the scenario asserts; a recovery without an RTO target."""
    from harness.step_meaning import asserted_severity, has_recovery, rto_target_s, tag_severity

    line = sc.line_number  # type: ignore[attr-defined]
    name = sc.name  # type: ignore[attr-defined]
    where = f"{path}:{line}"
    texts = [text for _, text, _ in rendered]
    out: list[LintProblem] = []
    tagged = tag_severity(sc.tags) or tag_severity(feature.tags)  # type: ignore[attr-defined]
    asserted = asserted_severity(texts)
    if tagged and asserted and tagged != asserted:
        out.append(LintProblem(
            where,
            f"severity: scenario '{name}' is tagged @{tagged.lower()} but its first alert step asserts a "
            f"{asserted} alert; reports show {asserted}. Tag the scenario @{asserted.lower()} or fix the alert step",
        ))
    if has_recovery(texts) and rto_target_s(texts) is None:
        out.append(LintProblem(
            where,
            f"no RTO: scenario '{name}' has a recovery step but states no RTO target; "
            'add "And the recovery meets an RTO of N seconds" after its recovery',
            level="warning",
        ))
    return out


QUOTED = re.compile(r'"([^"]*)"')
OUTLINE_PARAM = re.compile(r"<([A-Za-z0-9_ -]+)>")


def invisible_or_confusable(text: str) -> list[str]:
    """What in ``text`` a reader cannot see or would misread: format characters (zero-width space, BOM,
    bidi marks), control characters, unusual spaces anywhere; and, inside a quoted string, a word that
    mixes Latin letters with look-alike Cyrillic or Greek ones."""
    found: list[str] = []
    for ch in dict.fromkeys(text):
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Cc", "Co", "Cn") or (cat == "Zs" and ch != " "):
            found.append(f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}")
    for quoted in QUOTED.findall(text):
        for word in quoted.split():
            scripts = {unicodedata.name(c, "?").split()[0] for c in word if c.isalpha()}
            if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
                odd = ", ".join(
                    f"'{c}' U+{ord(c):04X} {unicodedata.name(c)}"
                    for c in dict.fromkeys(word)
                    if c.isalpha() and not unicodedata.name(c, "").startswith("LATIN")
                )
                found.append(f"'{word}' mixes Latin with look-alike letters ({odd})")
    return found


def _text_problems(path: Path, feature: Feature) -> list[LintProblem]:
    """Invisible/confusable characters in names and steps, and Outline columns missing from Examples."""
    problems: list[LintProblem] = []
    for what in invisible_or_confusable(feature.name or ""):
        problems.append(LintProblem(f"{path}:{feature.line_number}", f"feature name: {what}"))
    for sc in feature.scenarios.values():
        for what in invisible_or_confusable(sc.name):
            problems.append(LintProblem(f"{path}:{sc.line_number}", f"scenario name: {what}"))
        columns = {p for ex in (getattr(sc, "examples", None) or []) for p in ex.example_params}
        for step in sc.steps:
            for what in invisible_or_confusable(step.name):
                problems.append(LintProblem(f"{path}:{step.line_number}", f"step '{step.name}': {what}"))
            if columns:
                for param in OUTLINE_PARAM.findall(step.name):
                    if param not in columns:
                        problems.append(LintProblem(
                            f"{path}:{step.line_number}",
                            f"<{param}> has no column in the Examples of '{sc.name}' "
                            f"(columns: {', '.join(sorted(columns))})",
                        ))
    return problems


def _rendered_steps(sc: object) -> list[tuple[str, str, int]]:
    """(type, text, line) of each step; Scenario Outlines are checked once per Examples row."""
    steps = sc.steps  # type: ignore[attr-defined]
    examples = getattr(sc, "examples", None) or []
    rows: list[dict[str, str]] = []
    for ex in examples:
        for values in ex.examples:
            rows.append(dict(zip(ex.example_params, values, strict=False)))
    out: list[tuple[str, str, int]] = []
    for row in rows or [{}]:
        for step in steps:
            text = step.name
            for key, value in row.items():
                text = text.replace(f"<{key}>", value)
            out.append((step.type, text, step.line_number))
    return out


# --- what the shared library's step arguments name in a stack ----------------------------------------------


def reference_problems(
    paths: Iterable[Path], stack: StackDescription, defs: list[StepDef] | None = None, marker: str | None = None
) -> list[LintProblem]:
    """Step arguments that name what ``stack`` does not have, each with file:line.

    Only steps of the shared library (:data:`STEP_PACKAGE`) are checked, by argument name: ``link``
    (a link of the stack), ``title`` (a service, by its x-drill.title or name), ``mode`` (lab, paper,
    live), ``section`` and ``number`` (a section of the stack's runbook and a step of it). A team's
    own steps give their arguments their own meaning. With ``marker`` (the ``--tags``/``--quarter``
    expression) only the scenarios it selects are checked. Without this, a misspelt link passed a
    dry run and every other misspelling failed inside the scenario, after a whole stack had started.
    """
    from harness.errors import DrillError
    from harness.stack import MODES

    defs = load_step_library() if defs is None else defs
    library = [d for d in defs if d.context.step_func.__module__.startswith(STEP_PACKAGE + ".")]
    runbooks: dict[Path, Runbook | Exception] = {}
    selects = _selector(marker)
    problems: list[LintProblem] = []
    for path in feature_files(paths):
        feature = parse_feature(path)
        for sc in feature.scenarios.values():
            if not selects(set(feature.tags) | set(sc.tags)):
                continue
            for step_type, text, line in _rendered_steps(sc):
                match = next((d for d in library if d.type in (step_type, "step")
                              and d.context.parser.is_matching(text)), None)
                if match is None:
                    continue  # undefined, or a team's own step: `lint` reports the former
                args = match.context.parser.parse_arguments(text) or {}
                problem: str | None = None
                if "link" in args and str(args["link"]) not in stack.links:
                    known = ", ".join(f"'{name}'" for name in stack.links) or "none"
                    problem = f"no link '{args['link']}' in stack '{stack.name}' (its links: {known})"
                elif "title" in args:
                    try:
                        stack.service_titled(str(args["title"]))
                    except DrillError as exc:
                        problem = f"{exc.message.split(': ', 1)[-1]}; {exc.hint}"
                elif "mode" in args and str(args["mode"]).lower() not in MODES:
                    problem = f"mode '{args['mode']}' is none of {', '.join(MODES)}"
                elif "section" in args and "number" in args:
                    problem = _runbook_problem(stack, runbooks, str(args["section"]), int(args["number"]))
                found = LintProblem(f"{path}:{line}", f"step '{text}': {problem}")
                if problem and found not in problems:  # an Outline's rows may repeat it
                    problems.append(found)
    return problems


def _selector(marker: str | None) -> Callable[[set[str]], bool]:
    """Whether a scenario with these tags is selected by the pytest ``-m`` expression ``marker``."""
    if not marker:
        return lambda tags: True
    from _pytest.mark.expression import Expression  # pytest's own -m evaluation: the same selection

    expression = Expression.compile(marker)

    def selects(tags: set[str]) -> bool:
        def carries(name: str, /, **_: str | int | bool | None) -> bool:
            return name in tags

        return expression.evaluate(carries)

    return selects


def _runbook_problem(stack: StackDescription, cache: dict[Path, Runbook | Exception], name: str,
                     number: int) -> str | None:
    from harness.errors import DrillError
    from harness.runbook.parser import Runbook, parse_runbook

    if stack.runbook is None:
        return f"stack '{stack.name}' ({stack.path}) names no runbook: add x-drill.runbook"
    if stack.runbook not in cache:
        try:
            cache[stack.runbook] = parse_runbook(stack.runbook)
        except DrillError as exc:
            cache[stack.runbook] = exc
    runbook = cache[stack.runbook]
    if not isinstance(runbook, Runbook):
        return str(runbook)
    try:
        runbook.section(name).step(number)
    except DrillError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return None
