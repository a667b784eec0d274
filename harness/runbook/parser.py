"""Markdown runbook -> sections -> numbered steps -> shell blocks and prose checks, each with file:line.

Real runbooks are written by people at different times, so the parser is tolerant and never
raises on malformed Markdown: what it cannot make sense of becomes a :class:`Diagnostic` with
file:line (an unclosed code fence, a step without a number, an empty section, repeated step
numbers). Only an unreadable file raises (:class:`harness.errors.RunbookError`).

The shape it understands (the team's runbook and ``docs/incident-response-runbook.md``)::

    ### 1. Kill Switch Triggered            <- a section (heading; "1. " is dropped from the title)
    **Steps:**
    1. **Verify trigger reason**            <- step 1, title "Verify trigger reason"
       - Check the log                      <- a prose check of step 1
       ```bash                              <- a shell block of step 1 (indented or not)
       grep kill_switch artifacts/logs/latest.log
       ```

A fenced block outside any numbered step (the team's Rollback section) is an *implicit* step,
numbered after the steps before it in its section. A block whose info string names a language
other than a shell (``json``, ``yaml``, ``text``...) is kept but never run or linted as commands.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import RunbookError

SHELL_LANGS = frozenset({"", "bash", "sh", "shell", "zsh", "console"})

_HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})[ \t]+(?P<text>.*?)[ \t]*#*[ \t]*$")
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_NUMBERED = re.compile(r"^(?P<indent> {0,3})(?P<num>\d{1,3})[.)](?:[ \t]+(?P<text>.*))?$")
_UNNUMBERED = re.compile(r"^ {0,3}(?:[-*+]|#?[.)])?[ \t]*\*\*(?P<title>[^*]+?)\*\*[ \t]*:?[ \t]*$")
_BULLET = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+(?P<text>.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_NUMBER_PREFIX = re.compile(r"^\d{1,3}[.)][ \t]+")
_HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)\1")


class Severity(enum.StrEnum):
    BLOCKING = "blocking"  # the runbook cannot be followed as written
    WARNING = "warning"  # it can, but something is off


@dataclass(frozen=True)
class Diagnostic:
    """One finding about the runbook, at ``path:line``; ``hint`` says how to fix it."""

    path: Path
    line: int
    severity: Severity
    code: str
    message: str
    hint: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity.value} [{self.code}] {self.message}"
        return f"{text}\n  fix: {self.hint}" if self.hint else text


@dataclass(frozen=True)
class Command:
    """One logical shell command line of a block (continuation lines joined), at its first line."""

    text: str
    line: int


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block; ``line`` is the opening fence, ``text`` its content (de-indented)."""

    path: Path
    line: int
    lang: str
    text: str
    closed: bool = True

    @property
    def is_shell(self) -> bool:
        return self.lang.lower() in SHELL_LANGS

    @property
    def lines(self) -> tuple[tuple[int, str], ...]:
        """(file line, text) of every content line."""
        return tuple((self.line + 1 + i, text) for i, text in enumerate(self.text.split("\n")) if self.text)

    @property
    def commands(self) -> tuple[Command, ...]:
        """Lines that run something: not blank, not a ``#`` comment; ``\\`` continuations and heredocs joined."""
        out: list[Command] = []
        pending: list[str] = []
        start = 0
        heredoc: str | None = None
        for line_no, raw in self.lines:
            stripped = raw.strip()
            if heredoc is not None:
                pending.append(raw)
                if stripped == heredoc:
                    out.append(Command("\n".join(pending), start))
                    pending, heredoc = [], None
                continue
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if not pending:
                start = line_no
            pending.append(stripped)
            if stripped.endswith("\\"):
                continue
            match = _HEREDOC.search(stripped)
            if match:
                heredoc = match.group("word")
                continue
            out.append(Command(" ".join(p.rstrip("\\").strip() for p in pending), start))
            pending = []
        if pending:
            out.append(Command(" ".join(p.rstrip("\\").strip() for p in pending), start))
        return tuple(out)

    @property
    def commented_out(self) -> bool:
        """A shell block with text in it but nothing that would run."""
        return self.is_shell and any(t.strip() for _, t in self.lines) and not self.commands


@dataclass(frozen=True)
class Check:
    """A prose item a person checks by hand ("Visit IBKR status page"), at its line."""

    text: str
    line: int


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    line: int
    blocks: tuple[CodeBlock, ...] = ()
    checks: tuple[Check, ...] = ()
    implicit: bool = False  # a bare code block (no numbered list item): numbered after the steps before it
    numbered: bool = True  # False for an implicit step or a step written without a number

    @property
    def shell_blocks(self) -> tuple[CodeBlock, ...]:
        return tuple(b for b in self.blocks if b.is_shell)


@dataclass(frozen=True)
class Section:
    title: str
    slug: str
    level: int
    line: int
    end_line: int
    parents: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    notes: tuple[Check, ...] = ()  # prose outside steps (symptoms, decision points)

    @property
    def path_title(self) -> str:
        return " / ".join((*self.parents, self.title))

    def step(self, number: int) -> Step:
        for step in self.steps:
            if step.number == number:
                return step
        have = ", ".join(f"{s.number} ({s.title})" for s in self.steps) or "none"
        raise RunbookError(
            f"section '{self.title}' has no step {number}",
            hint=f"its steps: {have}",
        )

    @property
    def has_commands(self) -> bool:
        return any(b.is_shell for s in self.steps for b in s.blocks)


@dataclass(frozen=True)
class Runbook:
    path: Path
    title: str
    sections: tuple[Section, ...]
    diagnostics: tuple[Diagnostic, ...] = ()

    def section(self, name: str) -> Section:
        """The section called ``name`` (title or slug, case-insensitive, a leading "1. " ignored)."""
        wanted = slugify(name)
        found = [s for s in self.sections if s.slug == wanted]
        if len(found) == 1:
            return found[0]
        if found:
            where = ", ".join(f"{self.path}:{s.line}" for s in found)
            raise RunbookError(
                f"{len(found)} sections of {self.path} are called '{name}' ({where})",
                hint="give the sections distinct titles",
            )
        known = ", ".join(f"'{s.title}'" for s in self.sections if s.steps) or "none"
        raise RunbookError(
            f"{self.path} has no section called '{name}'",
            hint=f"sections with steps: {known}",
        )

    def diagnostics_of(self, severity: Severity) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == severity)


def slugify(title: str) -> str:
    """``"### 1. Kill Switch Triggered"`` -> ``kill-switch-triggered`` (the alerts' ``runbook`` label)."""
    text = _NUMBER_PREFIX.sub("", clean_title(title).lstrip("#").strip())
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def clean_title(text: str) -> str:
    """Heading or step text without Markdown emphasis, code ticks and a trailing colon."""
    text = re.sub(r"(\*\*|__|`)", "", text).strip()
    return text.rstrip(":").strip()


# --- parsing ---------------------------------------------------------------------------------------


@dataclass
class _StepBuilder:
    number: int
    title: str
    line: int
    implicit: bool = False
    numbered: bool = True
    blocks: list[CodeBlock] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def build(self) -> Step:
        return Step(self.number, self.title, self.line, tuple(self.blocks), tuple(self.checks), self.implicit,
                    self.numbered)


@dataclass
class _SectionBuilder:
    title: str
    level: int
    line: int
    parents: tuple[str, ...]
    steps: list[_StepBuilder] = field(default_factory=list)
    notes: list[Check] = field(default_factory=list)
    content_lines: int = 0
    end_line: int = 0

    def next_number(self) -> int:
        return (self.steps[-1].number if self.steps else 0) + 1


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.lstrip("\ufeff").splitlines()
        self.diagnostics: list[Diagnostic] = []
        self.sections: list[_SectionBuilder] = []
        self.stack: list[_SectionBuilder] = []
        self.title = ""
        self.step: _StepBuilder | None = None
        self.candidate: tuple[int, str] | None = None  # a bold-only line that may title the next block
        self.preamble = _SectionBuilder("", 0, 1, ())

    def diag(self, line: int, severity: Severity, code: str, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(self.path, line, severity, code, message, hint))

    @property
    def section(self) -> _SectionBuilder:
        return self.sections[-1] if self.sections else self.preamble

    def parse(self) -> Runbook:
        i = 0
        while i < len(self.lines):
            raw = self.lines[i]
            line_no = i + 1
            fence = _FENCE_OPEN.match(raw)
            if fence and not (fence.group("fence")[0] == "`" and "`" in fence.group("info")):
                i = self.read_fence(i, fence)
                continue
            self.read_line(line_no, raw)
            i += 1
        self.close_step()
        for sec in self.sections:
            if not sec.end_line:
                sec.end_line = len(self.lines)
        return Runbook(self.path, self.title, self.finish_sections(), tuple(self.diagnostics))

    # -- one line outside a code block ------------------------------------------------------------

    def read_line(self, line_no: int, raw: str) -> None:
        if not raw.strip():
            return
        heading = _HEADING.match(raw)
        if heading:
            self.open_section(line_no, len(heading.group("hashes")), heading.group("text"))
            return
        if _RULE.match(raw):
            self.close_step()
            self.candidate = None
            return
        self.section.content_lines += 1
        numbered = _NUMBERED.match(raw)
        if numbered and (len(numbered.group("indent")) <= 1 or self.step is None):
            self.close_step()
            self.candidate = None
            text = numbered.group("text") or ""
            self.step = _StepBuilder(int(numbered.group("num")), clean_title(text) or f"step {numbered.group('num')}",
                                     line_no)
            if not text.strip():
                self.diag(line_no, Severity.WARNING, "untitled-step", f"step {numbered.group('num')} has no title",
                          "write what the step does after the number, e.g. '2. **Check portfolio state**'")
            return
        indent = len(raw) - len(raw.lstrip(" \t"))
        if self.step is not None and indent >= 2:
            bullet = _BULLET.match(raw)
            self.step.checks.append(Check((bullet.group("text") if bullet else raw).strip(), line_no))
            return
        # a top-level line: it ends the step it follows
        self.close_step()
        unnumbered = _UNNUMBERED.match(raw)
        self.candidate = (line_no, clean_title(unnumbered.group("title"))) if unnumbered else None
        bullet = _BULLET.match(raw)
        self.section.notes.append(Check((bullet.group("text") if bullet else raw).strip(), line_no))

    def open_section(self, line_no: int, level: int, text: str) -> None:
        self.close_step()
        self.candidate = None
        for sec in reversed(self.sections):
            if not sec.end_line:
                sec.end_line = line_no - 1
            if sec.level < level:
                break
        title = _NUMBER_PREFIX.sub("", clean_title(text))
        if level == 1 and not self.title:
            self.title = title
        while self.stack and self.stack[-1].level >= level:
            self.stack.pop()
        if not title:
            self.diag(line_no, Severity.WARNING, "untitled-section", "a heading with no text",
                      "give the heading a title or remove it")
        sec = _SectionBuilder(title, level, line_no, tuple(s.title for s in self.stack))
        self.sections.append(sec)
        self.stack.append(sec)

    def close_step(self) -> None:
        if self.step is not None:
            self.section.steps.append(self.step)
            self.step = None

    # -- a fenced code block ------------------------------------------------------------------------

    def read_fence(self, i: int, fence: re.Match[str]) -> int:
        open_line = i + 1
        indent = len(fence.group("indent").expandtabs(4))
        marker = fence.group("fence")
        lang = (fence.group("info").split() or [""])[0]
        close = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        body: list[str] = []
        j = i + 1
        closed = False
        reopened = False
        while j < len(self.lines):
            if close.match(self.lines[j]):
                closed = True
                break
            nested = _FENCE_OPEN.match(self.lines[j])
            if nested and nested.group("info").strip() and nested.group("fence")[0] == marker[0]:
                reopened = True  # "```bash" inside a block: the block before it was never closed
                break
            body.append(_dedent(self.lines[j], indent))
            j += 1
        if reopened:
            self.diag(
                open_line, Severity.BLOCKING, "unclosed-fence",
                f"code block opened with {marker} at line {open_line} is not closed before another block opens "
                f"at line {j + 1}",
                f"add a closing {marker} line where the block that starts at line {open_line} ends",
            )
            block = CodeBlock(self.path, open_line, lang, "\n".join(body).rstrip("\n"), closed=False)
            self.section.content_lines += 1
            self.attach(block)
            return j  # parse the new opening fence normally
        if not closed:
            swallowed = next((i + 2 + k for k, b in enumerate(body) if re.match(r"^#{2,6}[ \t]+\S", b)), None)
            self.diag(
                open_line, Severity.BLOCKING, "unclosed-fence",
                f"code block opened with {marker} at line {open_line} is never closed: lines {open_line + 1}-"
                f"{len(self.lines)} are read as code"
                + (f" (including what looks like a heading at line {swallowed})" if swallowed else ""),
                f"add a closing {marker} line where the block ends",
            )
        block = CodeBlock(self.path, open_line, lang, "\n".join(body).rstrip("\n"), closed)
        self.section.content_lines += 1
        self.attach(block)
        return j + 1

    def attach(self, block: CodeBlock) -> None:
        if self.step is not None:
            self.step.blocks.append(block)
            return
        sec = self.section
        if self.candidate is not None:
            line, title = self.candidate
            self.candidate = None
            if any(s.numbered for s in sec.steps):
                self.diag(line, Severity.WARNING, "unnumbered-step",
                          f"step '{title}' has no number (the steps around it are numbered)",
                          f"write it as '{sec.next_number()}. **{title}**' so drills can refer to it by number")
            step = _StepBuilder(sec.next_number(), title, line, implicit=True, numbered=False)
        else:
            title = sec.notes[-1].text if sec.notes else (sec.title or "preamble")
            step = _StepBuilder(sec.next_number(), clean_title(title), block.line, implicit=True, numbered=False)
        step.blocks.append(block)
        self.step = step
        self.close_step()

    # -- after the last line ------------------------------------------------------------------------

    def finish_sections(self) -> tuple[Section, ...]:
        if self.preamble.steps:
            self.diag(self.preamble.steps[0].line, Severity.WARNING, "step-outside-section",
                      "steps before the first heading belong to no section and cannot be drilled",
                      "put them under a heading")
        out: list[Section] = []
        slugs: dict[str, int] = {}
        for n, sec in enumerate(self.sections):
            has_children = n + 1 < len(self.sections) and self.sections[n + 1].level > sec.level
            if sec.content_lines == 0 and not has_children:
                self.diag(sec.line, Severity.WARNING, "empty-section", f"section '{sec.title}' is empty",
                          "write its symptoms and steps, or remove the heading")
            seen: dict[int, int] = {}
            for step in sec.steps:
                if step.number in seen:
                    self.diag(step.line, Severity.WARNING, "repeated-step-number",
                              f"step number {step.number} of '{sec.title}' is used again "
                              f"(first at line {seen[step.number]})",
                              "number the steps 1, 2, 3... so drills can refer to each one")
                seen.setdefault(step.number, step.line)
            slug = slugify(sec.title)
            if slug and slug in slugs and sec.steps:
                self.diag(sec.line, Severity.WARNING, "duplicate-section",
                          f"another section is also called '{sec.title}' (line {slugs[slug]})",
                          "give sections distinct titles so drills can name them")
            slugs.setdefault(slug, sec.line)
            out.append(Section(sec.title, slug, sec.level, sec.line, sec.end_line, sec.parents,
                               tuple(s.build() for s in sec.steps), tuple(sec.notes)))
        return tuple(out)


def _dedent(line: str, indent: int) -> str:
    expanded = line.expandtabs(4)
    strip = min(indent, len(expanded) - len(expanded.lstrip(" ")))
    return expanded[strip:]


def parse_text(text: str, path: Path | str = "<runbook>") -> Runbook:
    """Parse runbook Markdown; never raises on malformed Markdown (see ``Runbook.diagnostics``)."""
    return _Parser(Path(path), text).parse()


def parse_runbook(path: Path | str) -> Runbook:
    """Read and parse the runbook at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookError(
            f"runbook not found: {path}",
            hint="pass the runbook's path, or set x-drill.runbook in the stack description",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(f"cannot read runbook {path}: {exc}", hint="it must be a UTF-8 Markdown file") from exc
    return parse_text(text, path)
