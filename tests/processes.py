"""Test subprocesses must not outlive the test run, even when pytest itself is killed."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when we die.

    Resolved before fork so the child only makes one libc call. Note that
    Linux fires it when the *thread* that started the child exits, so start
    the control plane from a long-lived thread (pytest's main thread is).
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))

    return preexec


DIE_WITH_PARENT = _die_with_parent()
