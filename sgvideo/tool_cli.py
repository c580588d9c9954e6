"""Tool front ends built from function signatures, one way for every `sgvideo` tool.

`run_function(function, argv, ...)` parses `argv` into `function`'s arguments with jsonargparse
(`ArgumentParser.add_function_arguments`): the options, their types, defaults and help come from
the signature and the docstring's Args section, nothing is listed twice, and every tool has
`--help`, `--config FILE` and `--print_config`. Options are the parameter names
(`--batch_size`); the dashed spellings (`--batch-size`), `--no-<flag>` for `--<flag> false`,
and a tool's older names (`flags`, e.g. `--generator` for `--generator_path`) are accepted too.
A usage error is a one-line error with exit code 2 like any user error
(`sgvideo.errors.reports_user_errors`).
"""

from __future__ import annotations

import inspect
import json
import re
from argparse import ArgumentError
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

# inf and nan as a shell user writes them -> YAML's spelling, so that they parse as floats (and
# reach the tool's own range check instead of a type error)
_SPECIAL_FLOATS = {"inf": ".inf", "+inf": ".inf", "-inf": "-.inf", "nan": ".nan"}
_SPECIAL_FLOAT = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def function_parser(
    function: Callable[..., Any], prog: str, description: str, skip: Sequence[str] = ()
) -> ArgumentParser:
    """A parser of `function`'s parameters (less `skip`), with `--config`."""
    epilog = "Options may also be spelt with dashes (--batch-size); --no-X means --X false."
    parser = ArgumentParser(prog=prog, description=description, epilog=epilog, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any options")
    parser.add_function_arguments(function, as_group=False, skip=set(skip))
    return parser


def normalise_argv(
    argv: Sequence[str], flags: Mapping[str, str] = {}, lists: Collection[str] = ()
) -> list[str]:
    """`--old-name` -> the parameter's option, `--no-x` -> `--x=false`, dashes -> underscores;
    the values after a list option (`--categories fire rain`) -> one YAML list."""
    out: list[str] = []
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or token in ("--", "--help", "--print_config"):
            out.append(_yaml_float(token))
            continue
        name, equals, value = token[2:].partition("=")
        value = _yaml_float(value)
        if name in flags:
            name = flags[name]
        elif name.startswith("no-") and not equals:
            name, equals, value = name[3:], "=", "false"
        name = name.replace("-", "_")
        if name in lists and not equals:
            values = []
            while tokens and not tokens[0].startswith("-"):
                values.append(tokens.pop(0))
            equals, value = "=", json.dumps(values)
        out.append("--" + name + equals + value)
    return out


def _list_parameters(function: Callable[..., Any]) -> set[str]:
    """Parameters annotated as sequences: they take several values after one option."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if re.search(r"\b(Sequence|list)\[", str(p.annotation))}


def _yaml_float(value: str) -> str:
    if not _SPECIAL_FLOAT.fullmatch(value):
        return value
    lower = value.lower().replace("infinity", "inf")
    return _SPECIAL_FLOATS.get(lower, value)


def parse_function_args(
    function: Callable[..., Any],
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    flags: Mapping[str, str] = {},
    exclusive: Sequence[Sequence[str]] = (),
) -> dict[str, Any] | int:
    """`function`'s keyword arguments from `argv`, or the exit code of `--help`, `--print_config`.

    `exclusive` lists groups of parameters of which at most one may be given.
    """
    parser = function_parser(function, prog, description)
    try:
        config = parser.parse_args(
            normalise_argv(list(argv or []), flags, _list_parameters(function))
        )
    except SystemExit as stop:  # --help, --print_config
        return int(stop.code or 0)
    except ArgumentError as error:
        raise ValueError(f"{error} (see {prog} --help)") from None
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # < 4.49
    kwargs = instantiate(config).as_dict()
    kwargs.pop("config", None)
    for group in exclusive:
        given = [name for name in group if kwargs.get(name) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of {', '.join('--' + n for n in given)}")
    return kwargs
