"""How every `sgvideo` tool reports a user's mistake: one line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator


class NotWeightsError(ValueError):
    """A file given as pretrained weights exists but is not the weights it should be."""


USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, ValueError)

ToolMain = Callable[[list[str] | None], int]


def reports_user_errors(
    prog: str, errors: tuple[type[BaseException], ...] = USER_ERRORS
) -> Callable[[ToolMain], ToolMain]:
    """Decorate a tool's `main(argv)`: `errors` become `prog: error: ...` and exit code 2.

    Bad input (a missing file, an unreadable sound, a checkpoint of another stage) is the
    user's to fix, so it gets the message alone, not a traceback.
    """

    def decorate(main: ToolMain) -> ToolMain:
        @functools.wraps(main)
        def wrapped(argv: list[str] | None = None) -> int:
            try:
                with _exit_on_sigterm():
                    return main(argv)
            except errors as error:
                print(f"{prog}: error: {one_line(str(error))}", file=sys.stderr)
                return 2

        return wrapped

    return decorate


def one_line(text: str) -> str:
    """`text` on one line (PyAV and torch messages can span several)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def describe(error: BaseException) -> str:
    """A library's exception for a user's message: "TypeName: message", on one line."""
    message = one_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """Inside the block SIGTERM raises SystemExit(143) instead of killing the process at once.

    The stack then unwinds as for Ctrl-C, so `atomic_path` removes its temporary files. Only the
    main thread can set signal handlers; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
