"""Peak memory of a piece of code, measured in a subprocess of its own.

``VmHWM`` (in ``/proc/self/status``) is the process's peak resident memory; measured after the
imports (``setup``) and again after ``code``, the difference is what ``code`` took at its peak.
Not ``ru_maxrss``: Linux carries that across fork and exec, so a child of a big test process
(pytest, after in-process commands) would start at its parent's peak and hide what ``code``
took. ``RLIMIT_AS`` caps the subprocess's address space, so that a regression fails at once (a
MemoryError, or a refusal) instead of taking the machine's memory from everyone else on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_RUNNER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
def _hwm():  # peak resident memory of this process since its exec, in kB
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
{setup}
_base = _hwm()
_out = None
try:
{code}
except MemoryError:
    _out = "MemoryError"
except Exception as _e:
    _out = type(_e).__name__ + ": " + str(_e)
_peak = _hwm()
print("PEAK_MB", (_peak - _base) / 1024)
print("OUT", _out)
"""


def peak_mb(
    setup: str, code: str, *, limit_mb: int = 1500, timeout: float = 120
) -> tuple[float, str]:
    """``(megabytes, outcome)``: how much more memory ``code`` took at its peak than ``setup``
    had, and ``outcome``, the string ``code`` left in ``_out`` or the exception it raised
    (``"Type: message"``; ``"MemoryError"`` when it hit the ``limit_mb`` cap)."""
    script = _RUNNER.format(
        limit=limit_mb * 1024 * 1024,
        setup=textwrap.dedent(setup),
        code=textwrap.indent(textwrap.dedent(code), "    "),
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=env
    )
    lines = dict(
        line.split(" ", 1)
        for line in done.stdout.splitlines()
        if line.startswith(("PEAK_MB", "OUT"))
    )
    assert "PEAK_MB" in lines, done.stderr[-2000:]
    return float(lines["PEAK_MB"]), lines["OUT"]
