"""The `vitkit` command: list, train, eval, predict, profile, visualize, convert, weights, export, reproduce
(each with --help).

A subcommand is a module of this package holding one `Command` (cli/command.py): its flags, its job, the paths
it reads and writes, its run; adding one is a module and a line in `COMMANDS`. The paths a command declares are
checked before it starts, so a bad path costs no work and leaves nothing half-written. Errors a user can cause
(VitkitError, bad flag values) print one line `error: ...` and exit with status 2; any other failure prints one
line naming the command and exits with status 1; `--debug` shows the traceback as well."""

from __future__ import annotations

import argparse
import re
import sys
import traceback

from ..errors import ConfigError, VitkitError
from . import convert, evaluate, export, list_models, predict, profile, reproduce, train, visualize, weights
from .command import Command
from .options import overrides_dict, parse_override
from .train import train_settings

__all__ = ["COMMANDS", "build_parser", "check_paths", "main", "overrides_dict", "parse_override", "train_settings"]

EXIT_FAILURE = 1
EXIT_USER_ERROR = 2

COMMANDS: dict[str, Command] = {
    "list": list_models.COMMAND, "train": train.COMMAND, "eval": evaluate.COMMAND, "predict": predict.COMMAND,
    "profile": profile.COMMAND, "visualize": visualize.COMMAND, "convert": convert.COMMAND,
    "weights": weights.COMMAND, "export": export.COMMAND, "reproduce": reproduce.COMMAND,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line `error: ...` (no usage block) and raises instead of exiting."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


class _CommandParser(_Parser):
    """A subcommand's parser: flags and positionals in any order (`predict CKPT a.png --topk 3 b.png`)."""

    _mixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._mixing:  # the intermixed parse calls back in here for its two passes
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="vitkit", description="vitkit: the vision-transformer family in one PyTorch toolkit.")
    parser.add_argument("--version", action="version", version=f"vitkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}",
                                parser_class=_CommandParser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def check_paths(args):
    """The command's job from the parsed `args`, once every path it declares has been checked."""
    command = COMMANDS[args.command]
    job = command.prepare(args)
    for path in command.paths(job):
        path.check()
    return job


def _one_line(e: BaseException) -> str:
    """The error's sentence. Errors raised in DataLoader workers arrive wrapped with the worker's traceback:
    keep only the original message."""
    text = str(e)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if re.match(r"^[\w.]+(Error|Exception): ", last) else last
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 an unexpected failure, 2 a user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    command = next((a for a in argv if a in COMMANDS), None)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command].run(check_paths(args))
    except SystemExit as e:  # --help / --version
        return e.code if isinstance(e.code, int) else 0
    except VitkitError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        hint = " (a run can continue with `vitkit train ... --resume`)" if command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vitkit list | head`: the reader closed the pipe, nothing went wrong here
        sys.stderr.close()
        return 0
    except Exception as e:  # a bug or an environment failure: one line unless --debug asks for the traceback
        if debug:
            traceback.print_exc()
        where = f"vitkit {command}" if command else "vitkit"
        hint = "" if debug else " (run again with --debug for the traceback)"
        print(f"error: {where} failed: {type(e).__name__}: {_one_line(e)}{hint}", file=sys.stderr)
        return EXIT_FAILURE
