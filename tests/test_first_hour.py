"""A newcomer's first hour: the README's commands, help that tells the truth, errors that help."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## On a fresh machine") : text.index("## The command line")]
    return re.findall(r"```\n(.*?)\n```", section, flags=re.S)


def test_ci_runs_the_readme_test_command_word_for_word():
    install_and_train, install_and_test = _readme_commands()
    assert install_and_train.startswith("python3 -m venv .venv && ")  # PEP 668: never bare pip
    assert install_and_test.startswith("python3 -m venv .venv && ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line and not line.startswith(("#", " "))]
    assert commands[-1] == install_and_test
