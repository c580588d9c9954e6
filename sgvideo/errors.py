"""How every `sgvideo` tool reports a user's mistake: one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

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
                return main(argv)
            except errors as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                return 2

        return wrapped

    return decorate
