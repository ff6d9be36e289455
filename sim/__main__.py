"""``python -m sim`` and the ``peaksim`` console script.

The command-line module is imported under ``quit_on_sigint``, so a Ctrl-C that lands while
Python imports it exits 130 like one during a command, instead of printing a traceback.
"""

from __future__ import annotations

from sim.interrupts import INTERRUPTED_EXIT, exit_interrupted, quit_on_sigint


def main() -> None:
    """Run ``peaksim``; exit 130 on Ctrl-C at any moment after Python itself started."""
    try:
        with quit_on_sigint():
            from sim.cli import app

        app(prog_name="peaksim")
    except KeyboardInterrupt:
        exit_interrupted("interrupted: files already written are kept")
    except SystemExit as exc:
        if exc.code == INTERRUPTED_EXIT:
            # CPython remembers a KeyboardInterrupt that ended an exec() of source text
            # (dataclasses and namedtuples are built that way while modules import) and,
            # under ``python -m``, turns the exit into a death by SIGINT even though it was
            # handled: leave without that final step.
            exit_interrupted()
        raise


if __name__ == "__main__":
    main()
