"""``python -m facedemo``: one sub-command per task, ``--json`` for machines, plain text for people.

A user error prints one line ``error: ...`` on stderr and exits with status 2; nothing prints a traceback.
Each feature module adds its own sub-commands through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import FaceDemoError
from . import cluster, core, evaluate, finetune, gallery
from .common import emit  # noqa: F401  (re-exported: the one way every command prints)

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors follow the same one-line rule
        print(f"error: {message} (see `python -m facedemo {self.prog.split()[-1]} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="facedemo", description="Face verification, identification and exploration.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (core, gallery, evaluate, finetune, cluster):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FaceDemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
