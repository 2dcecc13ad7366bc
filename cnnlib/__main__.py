"""The factory's command line: `python -m cnnlib regenerate` writes every artifact, `verify` checks
them."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from cnnlib.data import DEFAULT_DATA_DIR, IN_REPOSITORY, REPO_DIR, DataError
from cnnlib.export import NonFiniteError
from cnnlib.pipeline import regenerate
from cnnlib.store import BusyError, OutputError, prepare_output
from cnnlib.train import ConfigError, TrainConfig
from cnnlib.verify import DEFAULT_MIN_ACCURACY, verify

TRAINING_OPTIONS = {"epochs": int, "batches_per_epoch": int, "batch_size": int, "lr": float}
TRAINING_OPTIONS |= {"seed": int, "device": str}  # TrainConfig's fields


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit code 2)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_training_arguments(parser: argparse.ArgumentParser, device: str = "auto") -> None:
    """--epochs, --batches-per-epoch, --batch-size, --lr, --seed, --device: TrainConfig's fields."""
    defaults = TrainConfig(device=device)
    for name, kind in TRAINING_OPTIONS.items():
        option = "--" + name.replace("_", "-")
        parser.add_argument(option, type=kind, default=getattr(defaults, name))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the options ask for; ConfigError names a bad one."""
    return TrainConfig(**{name: getattr(args, name) for name in TRAINING_OPTIONS})


def percentage(text: str) -> float:
    """A threshold argument: a number from 0 to 100 (not NaN)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage from 0 to 100, got {text!r}")
    return value


def folder(text: str) -> Path:
    """A folder argument: any path a user can type, but not an empty one (that would be `.`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not a folder; name one, e.g. data")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m cnnlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    regen = commands.add_parser("regenerate", help="train and write every artifact, then verify")
    regen.add_argument("--out", type=folder, default=DEFAULT_DATA_DIR, help="output folder")
    regen.add_argument("--force", action="store_true", help="write beside others' files")
    add_training_arguments(regen)
    threshold = f"verify's threshold ({DEFAULT_MIN_ACCURACY:g} for a default-length run, else 0)"
    regen.add_argument("--min-accuracy", type=percentage, metavar="PCT", help=threshold)
    regen.add_argument("--quiet", action="store_true", help="no progress bar")
    check = commands.add_parser("verify", help="check the artifacts in a folder")
    check.add_argument("directory", nargs="?", type=folder, default=DEFAULT_DATA_DIR)
    check.add_argument(
        "--min-accuracy", type=percentage, default=DEFAULT_MIN_ACCURACY, metavar="PCT"
    )
    for command in (regen, check):
        command.set_defaults(command_parser=command)
    return parser


def run_regenerate(args: argparse.Namespace) -> int:
    parser = args.command_parser
    try:
        config = config_from_args(args)
        prepare_output(args.out, args.force)
    except (ConfigError, OutputError) as error:
        parser.error(str(error))
    except OSError as error:
        reason = error.strerror or error
        parser.error(f"--out {args.out} cannot be written ({reason}); choose a writable folder")
    unchanged = f"{args.out} was left as it was"
    options = {"progress": not args.quiet, "min_accuracy": args.min_accuracy, "force": args.force}
    try:
        summary = regenerate(config, args.out, **options)
    except (DataError, OutputError) as error:
        message = str(error)
    except BusyError as error:
        message = error.strerror
    except NonFiniteError as error:
        message = f"{error}; {unchanged}"
    except OSError as error:
        message = f"cannot write {args.out} ({error.strerror or error}); {unchanged}"
    except KeyboardInterrupt:
        message = f"interrupted; {unchanged}"
    else:
        print("\n".join(summary.report.lines() + summary.lines()))
        return 0 if summary.report.passed else 1
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 1


def run_verify(args: argparse.Namespace) -> int:
    if not args.directory.is_dir():
        state = "is not a folder" if args.directory.exists() else "does not exist"
        args.command_parser.error(f"{args.directory} {state}; name the folder regenerate wrote")
    report = verify(args.directory, min_accuracy=args.min_accuracy)
    print("\n".join(report.lines()))
    passed = "all" if report.passed else "NOT all"
    print(f"{passed} {len(report.checks)} checks passed in {report.directory}")
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not IN_REPOSITORY:
        parser.error(
            f"cnnlib runs from its repository, not from {REPO_DIR} (a `pip install .`, which "
            "copies no data/): in a clone, run `make setup` (pip install -e .)"
        )
    return run_regenerate(args) if args.command == "regenerate" else run_verify(args)


if __name__ == "__main__":
    # os._exit: flushed output, closed files, but not the 0.3 s of PyTorch's C++ destructors
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
