"""``drill lint --runbook FILE``: find runbook steps nobody can act on at 3 a.m., with file:line.

Findings are :class:`~harness.runbook.parser.Diagnostic` s, *blocking* (the runbook cannot be followed
as written: the lint exits non-zero) or *warnings*:

===================== ========= ====================================================================
code                  severity  what
===================== ========= ====================================================================
todo                  blocking  TODO / FIXME / TBD / XXX in a command block (also in a comment)
commented-out         blocking  a command block whose lines are all comments: nothing would run
placeholder           blocking  ``[Contact Info]``-style placeholders in prose, ``<name>`` in commands
unknown-command       blocking  a command's first word is not on PATH (incl. the venv), not a builtin
unknown-make-target   blocking  ``make X`` where the stack's Makefile has no target X (or no Makefile)
absolute-path         blocking  an absolute path (``/home/...``, ``~/...``) outside the stack
shell-syntax          blocking  ``bash -n`` rejects the block (unbalanced quotes, ``fi`` without ``if``)
unclosed-fence        blocking  from the parser: a code fence that is never closed
dangling-reference    blocking  a feature follows a section/step the stack's runbook does not have
missing-file          warning   a relative path a command reads does not exist in the stack workdir
                                (only with ``--workdir``: a running stack's working directory)
not-drilled           warning   a section with commands that no drill follows
(parser)              warning   empty section, step without a number, repeated step numbers
===================== ========= ====================================================================

Nothing in the runbook is executed: command names are looked up, blocks are syntax-checked with
``bash -n``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.catalog import invisible_or_confusable
from harness.runbook.parser import CodeBlock, Command, Diagnostic, Runbook, Severity

_BUILTIN_WORDS = """
    . : [ [[ ]] alias bg bind break builtin caller case cd command compgen complete continue declare
    dirs disown do done echo elif else enable esac eval exec exit export false fc fg fi for function
    getopts hash help history if in jobs kill let local logout mapfile popd printf pushd pwd read
    readarray readonly return select set shift shopt source suspend test then time times trap true
    type typeset ulimit umask unalias unset until wait while { } ! ((
"""
SHELL_BUILTINS = frozenset(_BUILTIN_WORDS.split())
WRAPPERS = frozenset({"sudo", "env", "nohup", "exec", "command", "builtin", "nice", "time", "!"})
CONTROL = frozenset({"|", "||", "&&", ";", "&", "(", ")", "|&", ";;", "\n"})
REDIRECTS = frozenset({">", ">>", "<", "2>", "2>>", "&>", ">&", "<<", "<<<"})
SAFE_ABSOLUTE = ("/dev/null", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/zero", "/dev/urandom", "/dev/random",
                 "/dev/fd/")

_TODO = re.compile(r"\b(TODO|FIXME|TBD|XXX)\b")
_PROSE_PLACEHOLDER = re.compile(
    r"\[(?=[^\]\[]*\b(?:contact|support|phone|number|e-?mail|name|tbd|todo|fixme|placeholder|insert|fill)\b)"
    r"[^\]\[\n]{1,60}\](?!\()",
    re.IGNORECASE,
)
_ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9_-]*>")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_ABS_PATH = re.compile(r"^(?:~|/)[A-Za-z0-9._~-]*(?:/[A-Za-z0-9._*?-]*)*$")
_REL_PATH = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.*?\[\]-]+)+/?$")
_MAKE_TARGET = re.compile(r"^(?P<targets>[^\s:=#][^:=#]*?)\s*::?(?![=])")
_BASH_ERROR = re.compile(r"line (\d+): (.*)")


@dataclass(frozen=True)
class LintOptions:
    """Where to look things up; every field is optional (a check without its input is skipped)."""

    stack_dir: Path | None = None  # the directory of the stack file: its Makefile, paths "inside the stack"
    workdir: Path | None = None  # a running stack's working directory: do read files exist?
    features: Sequence[Path] = ()  # drills whose steps follow runbook sections
    references_block: bool = False  # a feature following a missing section/step is blocking (the stack's runbook)
    search_path: str | None = None  # PATH to look commands up in (default: the venv's bin + $PATH)


def lint_runbook(runbook: Runbook, options: LintOptions | None = None) -> list[Diagnostic]:
    """Every finding about ``runbook``, sorted by line."""
    opts = options or LintOptions()
    out: list[Diagnostic] = list(runbook.diagnostics)
    if not any(section.steps for section in runbook.sections):
        out.append(
            Diagnostic(
                runbook.path, 1, Severity.BLOCKING, "no-sections",
                f"the runbook has no section with steps ({len(runbook.sections)} heading(s), 0 steps): "
                "no incident can be followed from it",
                "give each incident a '## <Incident>' heading with numbered steps under it",
            )  # fmt: skip
        )
    out.extend(_prose_placeholders(runbook))
    for section in runbook.sections:
        for what in invisible_or_confusable(section.title):
            out.append(
                Diagnostic(
                    runbook.path, section.line, Severity.BLOCKING, "invisible-char",
                    f"section title '{section.title}': {what}",
                    "retype the title: features find sections by their exact name",
                )  # fmt: skip
            )
    targets = make_targets(opts.stack_dir, opts.workdir)
    path = opts.search_path if opts.search_path is not None else default_search_path()
    for section in runbook.sections:
        for step in section.steps:
            for block in step.shell_blocks:
                out.extend(_lint_block(runbook.path, block, opts, targets, path))
    out.extend(_drill_findings(runbook, opts))
    return sorted(out, key=lambda d: (str(d.path) != str(runbook.path), str(d.path), d.line, d.code))


def default_search_path() -> str:
    """The venv's bin first (where ``drill`` and a Python stack's CLIs live), then $PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])


def make_targets(*dirs: Path | None) -> dict[Path, frozenset[str]]:
    """Targets of the Makefile in each of ``dirs`` that has one."""
    found: dict[Path, frozenset[str]] = {}
    for d in dirs:
        if d is None:
            continue
        for name in ("GNUmakefile", "makefile", "Makefile"):
            mk = d / name
            if mk.is_file():
                found[mk] = _targets_of(mk.read_text(encoding="utf-8", errors="replace"))
                break
    return found


def _targets_of(text: str) -> frozenset[str]:
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("\t", " ", "#")):
            continue
        m = _MAKE_TARGET.match(line)
        if m:
            names.update(t.replace("\\:", ":") for t in re.split(r"(?<!\\)\s+", m.group("targets").strip()))
    return frozenset(n for n in names if n and not n.startswith("."))


# --- prose ------------------------------------------------------------------------------------------


def _block_lines(runbook: Runbook) -> set[int]:
    lines: set[int] = set()
    for section in runbook.sections:
        for step in section.steps:
            for block in step.blocks:
                n = block.text.count("\n") + 1 if block.text else 0
                lines.update(range(block.line, block.line + n + 2))
    return lines


def _prose_placeholders(runbook: Runbook) -> list[Diagnostic]:
    try:
        text = runbook.path.read_text(encoding="utf-8")
    except OSError:
        return []
    skip = _block_lines(runbook)
    out: list[Diagnostic] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if n in skip:
            continue
        for m in _PROSE_PLACEHOLDER.finditer(line):
            out.append(Diagnostic(runbook.path, n, Severity.BLOCKING, "placeholder",
                                  f"placeholder {m.group(0)} where the on-call needs real information",
                                  "write the real contact (or the role and where the rota lives) instead"))
        m2 = _TODO.search(line)
        if m2:
            out.append(Diagnostic(runbook.path, n, Severity.WARNING, "todo",
                                  f"{m2.group(1)} in the runbook text: {line.strip()[:80]}",
                                  "finish the step or remove the note"))
    return out


# --- command blocks ----------------------------------------------------------------------------------


def _lint_block(
    path: Path, block: CodeBlock, opts: LintOptions, targets: dict[Path, frozenset[str]], search: str
) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def add(line: int, severity: Severity, code: str, message: str, hint: str) -> None:
        out.append(Diagnostic(path, line, severity, code, message, hint))

    for line, text in block.lines:
        m = _TODO.search(text)
        if m:
            add(line, Severity.BLOCKING, "todo", f"{m.group(1)} in a command block: {text.strip()}",
                "replace it with the command that works against the stack (check it with `drill stack up`)")
    if block.commented_out:
        add(block.line, Severity.BLOCKING, "commented-out",
            "command block has no command: every line is a comment, so following this step does nothing",
            "write the real command (uncommented), or turn the block into prose if it is not a command")
        return out
    if not block.closed:
        return out  # the parser reported it; its "commands" are the rest of the file
    out.extend(_syntax(path, block))
    cd_seen = False
    for cmd in block.commands:
        for m in _ANGLE_PLACEHOLDER.finditer(cmd.text):
            add(cmd.line, Severity.BLOCKING, "placeholder", f"placeholder {m.group(0)} in command: {cmd.text}",
                "write the value the on-call should use (a role such as head-of-risk is fine)")
        try:
            tokens = _tokens(cmd.text)
        except ValueError as exc:
            add(cmd.line, Severity.BLOCKING, "shell-syntax", f"cannot split command ({exc}): {cmd.text}",
                "balance the quotes")
            continue
        for word, args in _simple_commands(tokens):
            out.extend(_check_command(path, cmd, word, args, targets, search))
        out.extend(_check_paths(path, cmd, tokens, opts, check_files=not cd_seen))
        if any(word == "cd" for word, _ in _simple_commands(tokens)):
            cd_seen = True  # later relative paths are relative to somewhere else
    return out


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text.split("<<")[0] if "<<" in text and "<<<" not in text else text,
                        posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _simple_commands(tokens: list[str]) -> Iterable[tuple[str, list[str]]]:
    """(command word, its arguments) of each simple command in a token list."""
    current: list[str] = []
    for tok in [*tokens, ";"]:
        if tok in CONTROL or set(tok) <= set(";&|()"):
            words = [t for t in current]
            while words and (_ASSIGNMENT.match(words[0]) or words[0] in WRAPPERS or words[0].startswith("-")):
                words.pop(0)
            if words:
                yield words[0], words[1:]
            current = []
        else:
            current.append(tok)


def _check_command(
    path: Path, cmd: Command, word: str, args: list[str], targets: dict[Path, frozenset[str]], search: str
) -> list[Diagnostic]:
    if word in SHELL_BUILTINS or "$" in word or "`" in word or word in REDIRECTS or word[0] in "<>":
        return []
    if word == "make":
        return _check_make(path, cmd, args, targets)
    if "/" in word:
        return []  # a script path: the path checks cover it
    if shutil.which(word, path=search) is None:
        return [Diagnostic(path, cmd.line, Severity.BLOCKING, "unknown-command",
                           f"`{word}` is not a command here: not on PATH (venv bin + $PATH) and not a shell builtin"
                           f" (in: {cmd.text})",
                           "use the stack's operator CLI (x-drill.operator; its --help lists the commands) or "
                           "install the tool")]
    return []


def _check_make(path: Path, cmd: Command, args: list[str], targets: dict[Path, frozenset[str]]) -> list[Diagnostic]:
    wanted = [a for a in args if not a.startswith("-") and "=" not in a]
    if not targets:
        return [Diagnostic(path, cmd.line, Severity.BLOCKING, "unknown-make-target",
                           f"`{cmd.text}`: there is no Makefile in the stack directory",
                           "use the stack's operator CLI command that does this (x-drill.operator)")]
    known = frozenset().union(*targets.values())
    out = []
    for target in wanted:
        if target not in known:
            where = ", ".join(str(p) for p in targets)
            close = ", ".join(sorted(known)) or "none"
            out.append(Diagnostic(path, cmd.line, Severity.BLOCKING, "unknown-make-target",
                                  f"`make {target}`: no target '{target}' in {where} (its targets: {close})",
                                  "use the stack's operator CLI command that does this (x-drill.operator)"))
    return out


def _check_paths(
    path: Path, cmd: Command, tokens: list[str], opts: LintOptions, *, check_files: bool
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    words = [t for t in tokens if t not in CONTROL]
    writes: set[int] = set()
    for i, tok in enumerate(words):
        if tok in (">", ">>") and i + 1 < len(words):
            writes.add(i + 1)
    if words and words[0] in ("cp", "mv", "tee", "touch", "mkdir", "install", "ln"):
        writes.add(len(words) - 1)
        if words[0] in ("tee", "touch", "mkdir"):
            writes.update(range(1, len(words)))
    for i, tok in enumerate(words):
        value = tok.split("=", 1)[1] if tok.startswith("-") and "=" in tok else tok
        if "://" in value or value.startswith("-"):
            continue
        if _ABS_PATH.match(value) and value not in ("/", "~") and not value.startswith(SAFE_ABSOLUTE):
            inside = opts.stack_dir is not None and _is_within(Path(value).expanduser(), opts.stack_dir)
            if not inside:
                out.append(Diagnostic(path, cmd.line, Severity.BLOCKING, "absolute-path",
                                      f"absolute path {value} is outside the stack (in: {cmd.text})",
                                      "run commands from the stack's working directory and use paths relative to it"))
            continue
        if check_files and opts.workdir is not None and i not in writes and _REL_PATH.match(value):
            matches = list(opts.workdir.glob(value)) if any(c in value for c in "*?[") else (
                [opts.workdir / value] if (opts.workdir / value).exists() else [])
            if not matches:
                out.append(Diagnostic(path, cmd.line, Severity.WARNING, "missing-file",
                                      f"{value} does not exist in the stack working directory {opts.workdir} "
                                      f"(in: {cmd.text})",
                                      "check the path against what the stack writes (docs/stack-contract.md), or "
                                      "create it in an earlier step"))
    return out


def _is_within(p: Path, root: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _syntax(path: Path, block: CodeBlock) -> list[Diagnostic]:
    bash = shutil.which("bash")
    if bash is None:
        return []
    try:
        proc = subprocess.run([bash, "-n"], input=block.text, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode == 0:
        return []
    m = _BASH_ERROR.search(proc.stderr)
    line = block.line + int(m.group(1)) if m else block.line
    detail = m.group(2).strip() if m else proc.stderr.strip()[:200]
    return [Diagnostic(path, line, Severity.BLOCKING, "shell-syntax", f"bash cannot parse this block: {detail}",
                       "fix the shell syntax (bash -n reports it)")]


# --- drills ---------------------------------------------------------------------------------------------


def _drill_findings(runbook: Runbook, opts: LintOptions) -> list[Diagnostic]:
    from harness.runbook.coverage import drill_references  # features are parsed only when asked

    if not opts.features:
        return []
    refs = drill_references(opts.features)
    out: list[Diagnostic] = []
    drilled: set[str] = set()
    for ref in refs:
        section = next((s for s in runbook.sections if s.slug == ref.slug), None)
        sev = Severity.BLOCKING if opts.references_block else Severity.WARNING
        if section is None:
            out.append(Diagnostic(ref.feature_file, ref.line, sev, "dangling-reference",
                                  f'the drill follows section "{ref.section}" but {runbook.path} has no such section',
                                  "fix the section title in the feature or in the runbook"))
            continue
        drilled.add(section.slug)
        if ref.step not in {s.number for s in section.steps}:
            out.append(Diagnostic(ref.feature_file, ref.line, sev, "dangling-reference",
                                  f'the drill follows step {ref.step} of "{section.title}" but it has steps '
                                  f"{', '.join(str(s.number) for s in section.steps) or 'none'}",
                                  "fix the step number in the feature"))
    for section in runbook.sections:
        if section.has_commands and section.slug not in drilled:
            out.append(Diagnostic(runbook.path, section.line, Severity.WARNING, "not-drilled",
                                  f'no drill follows a step of section "{section.title}"',
                                  f'add a scenario step like: When the on-call follows runbook step 1 of '
                                  f'"{section.title}"'))
    return out
