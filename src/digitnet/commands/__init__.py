"""What the commands share: argument types, the help formatter, warnings on stderr.

Each command lives in a module of this package with ``register(subparsers)``, which adds its
parser and sets ``handler``; :mod:`digitnet.cli` registers them in order. Modules here import
only the standard library at the top, so ``digitnet --help`` stays light; NumPy and the rest load
inside the handlers.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

#: help text is wrapped to the terminal, but never wider than this (long lines are hard to read)
HELP_WIDTH = 100


class Formatter(argparse.HelpFormatter):
    """Help that tells the truth, wrapped to the terminal.

    Descriptions are wrapped to the terminal's width; epilogs (examples, tables: text with line
    breaks) are printed as written. An option's default is shown only when it means something:
    never ``(default: None)`` or ``(default: False)``, and never when the help already says its
    default. A command with options shows a one-line usage (``digitnet train [OPTIONS]``); its
    options are listed below it.
    """

    def __init__(self, prog: str, **kwargs: Any) -> None:
        columns = shutil.get_terminal_size((HELP_WIDTH, 24)).columns
        kwargs.setdefault("width", max(40, min(columns, HELP_WIDTH) - 2))
        kwargs.setdefault("max_help_position", 30)
        super().__init__(prog, **kwargs)

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.wrap(text, width, break_on_hyphens=False)  # never "sigmoid-" / "mse"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        if "\n" in text:  # an epilog laid out by hand: examples, tables, prose
            lines: list[str] = []
            prose: list[str] = []  # unindented lines in a row: a paragraph, wrapped as one
            for line in [*text.splitlines(), ""]:
                if line and not line[0].isspace():
                    prose.append(line)
                    continue
                if prose:
                    paragraph = " ".join(prose)
                    lines += textwrap.wrap(paragraph, width, break_on_hyphens=False) or [""]
                    prose = []
                lines += _fit(line, width)
            lines.pop()  # the "" added above
            return "\n".join(indent + line for line in lines) + "\n" * text.endswith("\n")
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.fill(
            text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
            and not isinstance(action, argparse._VersionAction)
        ):
            text += " (default: %(default)s)"
        return text

    def add_usage(
        self, usage: Any, actions: Iterable[argparse.Action], groups: Any, prefix: Any = None
    ) -> None:
        actions = list(actions)
        if usage is None:
            usage = short_usage(self._prog, actions)
        super().add_usage(usage, actions, groups, prefix)


def _fit(line: str, width: int) -> list[str]:
    """A line laid out by hand, fitted to ``width``: an example's ``# comment`` goes on its own
    line below the command; other text wraps under its own indentation."""
    import textwrap

    if len(line) <= width:
        return [line]
    lead = line[: len(line) - len(line.lstrip())]
    command, sep, comment = line.partition("  # ")
    if sep and command.strip():
        return _fit(command.rstrip(), width) + _fit(f"{lead}    # {comment.strip()}", width)
    return textwrap.wrap(
        line.strip(),
        width,
        initial_indent=lead,
        subsequent_indent=lead + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def short_usage(prog: str, actions: Iterable[argparse.Action]) -> str:
    """``digitnet predict [OPTIONS] MODEL IMAGE [IMAGE ...]``: the command and its arguments."""
    words = [prog]
    actions = list(actions)
    if any(a.option_strings and a.dest != "help" for a in actions):
        words.append("[OPTIONS]")
    for a in actions:
        if a.option_strings or a.help == argparse.SUPPRESS:
            continue
        name = a.metavar or a.dest.upper()
        if isinstance(a, argparse._SubParsersAction):
            words.append(f"{name} ...")
        elif a.nargs == "?":
            words.append(f"[{name}]")
        elif a.nargs == "+":
            words.append(f"{name} [{name} ...]")
        elif a.nargs == "*":
            words.append(f"[{name} ...]")
        else:
            words.append(name)
    return " ".join(words)


def did_you_mean(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``word`` was probably meant to be: its initials (``--learning-rate``:
    ``--lr``), else the closest spelling (difflib), else None."""
    import difflib

    bare = word.split("=", 1)[0]
    if bare.startswith("--"):
        initials = "--" + "".join(part[:1] for part in re.split(r"[-_]", bare[2:]) if part)
        if len(initials) > 3 and initials in candidates:
            return initials
    close = difflib.get_close_matches(bare, candidates, n=1, cutoff=0.6)
    if not close and bare.startswith("--"):  # an option's name missing its dashes or a part
        stems = {c: c.lstrip("-") for c in candidates if c.startswith("--")}
        close = [c for c, s in stems.items() if len(s) > 2 and (s in bare or bare[2:] in s)][:1]
    return close[0] if close else None


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are two lines, ``error: ...`` and ``hint: ...``.

    Exit status 2, as argparse's own; no usage dump. A misspelled command, option or choice gets
    the closest one (``did you mean --lr?``); a bad value gets what the option takes.
    """

    def error(self, message: str) -> NoReturn:
        hint = self._hint(message)
        sub = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is not None:
            what = "command" if self.prog == "digitnet" else f"command of '{self.prog}'"
            message = re.sub(
                rf"^argument {re.escape(sub.metavar or '')}: invalid choice: '?([^'(]*?)'? \(.*$",
                rf"'\1' is not a {what}",
                message,
            )
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        print(f"hint: {hint}", file=sys.stderr)
        sys.exit(2)

    def _action_named(self, name: str) -> argparse.Action | None:
        for action in self._actions:
            names = [*action.option_strings, action.metavar, action.dest]
            if name in names or name in "/".join(n for n in names if isinstance(n, str)).split("/"):
                return action
        return None

    def _hint(self, message: str) -> str:
        more = f"'{self.prog} --help' lists every option, with examples"
        choice = re.search(r"invalid choice: '?([^'(]*?)'? \(choose from (.*)\)$", message)
        named = re.match(r"argument ([^:]+): ", message)
        action = self._action_named(named.group(1)) if named else None
        if choice:
            given = choice.group(1)
            options = [c.strip(" '") for c in choice.group(2).split(",")]
            guess = did_you_mean(given, options)
            if isinstance(action, argparse._SubParsersAction):
                if guess:
                    return f"did you mean '{self.prog} {guess}'?"
                names = ", ".join(options)
                return f"the commands are {names}; '{self.prog} --help' says what each does"
            if action is not None and not action.option_strings:  # a positional argument
                if guess:
                    return f"did you mean '{self.prog} {guess}'?"
                return f"choose one of those; '{self.prog} --help' says what each is"
            flag = action.option_strings[-1] if action is not None else ""
            if guess:
                return f"did you mean {flag} {guess}?"
            return f"choose one of those; '{self.prog} --help' says what each does"
        if message.startswith("unrecognized arguments: "):
            options = [s for a in self._actions for s in a.option_strings]
            for word in message.split(": ", 1)[1].split():
                if word.startswith("-"):
                    guess = did_you_mean(word, options)
                    if guess:
                        return f"did you mean {guess}? ({more})"
                    return f"{word} is not an option of '{self.prog}'; {more}"
            return f"too many arguments: the command is '{short_usage(self.prog, self._actions)}'"
        if message.startswith("the following arguments are required"):
            sub = next(
                (a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None
            )
            if sub is not None:
                names = ", ".join(sub.choices)
                return f"say which: '{self.prog} {sub.metavar}' with {sub.metavar} one of {names}"
            return f"the command is '{short_usage(self.prog, self._actions)}'; {more}"
        clash = re.search(r": not allowed with argument (\S+)$", message)
        if clash and named:
            return f"give {named.group(1)} or {clash.group(1)}, not both"
        if action is not None and action.option_strings:
            flag = action.option_strings[-1]
            metavar = action.metavar or (
                "{" + ",".join(map(str, action.choices)) + "}" if action.choices else "VALUE"
            )
            what = re.sub(r"\s*\(default.*$", "", (action.help or "").split(";")[0])
            what = what % {"default": action.default} if "%(" in what else what
            return f"{flag} {metavar}: {what}".rstrip(": ")
        return more


def batch_size(text: str) -> int | str:
    if text.lower() == "full":
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'full'; got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'full'; got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: a non-negative integer (NumPy's generators take no other)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a seed is a non-negative integer; got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer; got {text!r}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def warn(text: str) -> None:
    """A warning from the library, as one line on stderr."""
    print(f"warning: {text}", file=sys.stderr)


#: the model file inside a run folder
MODEL_FILE = "model.safetensors"


def model_path(text: str) -> Path:
    """The model file that MODEL names: the file itself, or ``model.safetensors`` in a folder."""
    from digitnet.errors import ModelFileError

    path = Path(text).expanduser()
    if path.is_dir():
        inside = path / MODEL_FILE
        if not inside.is_file():
            raise ModelFileError(
                f"{text}: a folder without {MODEL_FILE}.",
                "give a model file, or a run folder written by 'digitnet train --out DIR'",
            )
        return inside
    if not path.exists():
        raise ModelFileError(
            f"{text}: no such file or folder.",
            f"give a {MODEL_FILE} file, or the folder 'digitnet train --out DIR' wrote",
        )
    return path
