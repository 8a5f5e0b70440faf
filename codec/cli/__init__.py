"""The `codec` command line: one small module per subcommand, dispatched from here.

Every subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code. Errors meant
for users (:class:`codec.errors.CodecError`, ``OSError``, ``MemoryError``) become one line on stderr and a
non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from codec.errors import CodecError

# Subcommand modules, in the order `codec --help` lists them.
_COMMANDS = ("encode", "decode", "info", "models", "roundtrip", "eval", "train")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    from codec import __version__

    parser = argparse.ArgumentParser(prog="codec", description="Learned image codec.")
    parser.add_argument("--version", action="version", version=f"codec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"codec.cli.{name}").register(subparsers)
    for sub in subparsers.choices.values():  # so that a misplaced option is reported by its subcommand
        sub.set_defaults(parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `codec` console script."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage and name, not the top level's
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("codec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of standard output stopped (`codec info f.bin | head -1`): quietly,
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 128 + 13  # with the status of a tool killed by SIGPIPE, as `cat` and `yes` end there
    except (CodecError, OSError) as err:
        print(f"codec {args.command}: error: {err}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"codec {args.command}: error: not enough memory", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
