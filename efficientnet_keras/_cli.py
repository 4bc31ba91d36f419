"""What the three command lines (train, export, predict) share: ``--help`` that exits 0 and names the command.

absl's ``app.run`` prints the main module's flags under its file path and exits with status 1 on ``--help``;
a user asking for help has made no error, and the path is this machine's, so help is answered here.
"""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ["run_app", "HELP_FLAGS"]

HELP_FLAGS = ("-h", "--help", "-?", "--helpshort", "--helpfull")


def run_app(main: Callable, command: str, doc: str | None) -> None:
    """``app.run(main)``, except that a help flag prints ``doc`` and the command's own flags, then exits 0."""
    from absl import app, flags

    if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
        print((doc or "").strip() + "\n")
        text = flags.FLAGS.module_help(sys.argv[0]) if "--helpfull" not in sys.argv else str(flags.FLAGS)
        # absl heads each module's flags with the module's file path: name the command instead.
        print("\n".join(f"python -m {command} flags:" if line.strip() == f"{sys.argv[0]}:" else line
                        for line in text.splitlines()))
        sys.exit(0)
    app.run(main)
