"""Text from a file, made safe to print on a terminal.

A model file's class names and dataset name are whatever its writer put there. Printed raw, an
escape sequence in them recolours the terminal, clears it or retitles its window, and a
right-to-left override turns what follows around. :func:`printable` shows such characters as
Python writes them in a string literal (``\\x1b``, ``\\u202e``), and leaves the rest, accents
and all, as it is.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` with its control and format characters (Unicode categories Cc, Cf: escape
    sequences, carriage returns, bidirectional overrides...), its separators other than the
    space (line and paragraph separators) and lone surrogates escaped."""
    s = str(text)
    if s.isprintable():
        return s
    unsafe = ("Cc", "Cf", "Zl", "Zp", "Cs")
    return "".join(_escaped(ch) if unicodedata.category(ch) in unsafe else ch for ch in s)
