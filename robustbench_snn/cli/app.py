"""The ``rsc-bench`` group: logging, user folders, and one convention for errors and exit codes.

Exit codes: 0 done; 1 a check failed (``submit check``); 2 a mistake the user can fix (a bad
option, a missing file, no GPU for ``--device cuda``), reported in one ``Error:`` line; 3 no
stored result matches. Nothing is written when a command fails on a mistake.

Command modules import the library inside their commands, so ``rsc-bench --help`` answers
without importing torch.
"""

from __future__ import annotations

import errno
import logging
import os

import click

from robustbench_snn.errors import UserError
from robustbench_snn.shipped import USER_FOLDERS_VARIABLE


class UserFacingError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Cli(click.Group):
    """A click group that reports a `UserError` as one clean message with its exit code, and a full
    disk as one line (writers replace files in one step, so a failed write leaves nothing half-done)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise UserFacingError(str(error), error.exit_code) from None
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing {error.filename}" if error.filename else ""
            raise UserFacingError(f"no space left on the device{where}; nothing half-written was kept", 2) from None


def _folders_option(flag: str, variable: str, what: str):
    return click.option(
        flag,
        multiple=True,
        envvar=variable,
        type=click.Path(file_okay=False, exists=True),
        help=f"A folder of your own {what}, searched before the shipped ones (repeatable; ${variable} lists "
        f"folders separated by '{os.pathsep}').",
    )


@click.group(
    cls=Cli,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Options whose value is a registered name (DATASET, GRAD, SURROGATE, ...) list the names with `rsc-bench names`. "
    "Exit codes: 0 done, 1 a check failed, 2 a mistake in the input (one Error: line), 3 no stored result matches.",
)
@click.version_option(package_name="robustbench-snn")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@_folders_option("--models-dir", USER_FOLDERS_VARIABLE["models"], "model cards (NAME.yaml or DATASET/NAME.yaml)")
@_folders_option("--attacks-dir", USER_FOLDERS_VARIABLE["attacks"], "attack presets (NAME.yaml)")
def main(verbose: int, models_dir: tuple[str, ...], attacks_dir: tuple[str, ...]) -> None:
    """rsc-bench: adversarial robustness of spiking neural networks against ANN baselines.

    Evaluate registered models (or your own checkpoints) under named attack protocols, and
    browse the registry. Run `rsc-bench COMMAND --help` for each command.
    """
    from robustbench_snn.runtime import keep_freed_memory

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # torch.compile's note that a CPU-only machine has no CUDA runtime is not news to a user.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    # The library reads the user's folders from the same variables the options stand for.
    for kind, folders in (("models", models_dir), ("attacks", attacks_dir)):
        if folders:
            os.environ[USER_FOLDERS_VARIABLE[kind]] = os.pathsep.join(folders)
    keep_freed_memory()
