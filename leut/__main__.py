"""`python -m leut ...`: the `leut` command line (`leut.cli.main`); the launch scripts start every process this way.

Multi-host start-up is the first thing `cli.main` does (`leut.distributed.maybe_initialize()`, when
`LEUT_JAX_INIT=1`), before anything touches a JAX device, so nothing here may import JAX or initialise. This file
runs as `__main__`, and `leut.distributed` is imported under its own name by the CLI alone, so the flag recording
that initialisation happened lives in one module object: a module that keeps such state must never itself be the
`-m` target, or Python loads it twice (as `__main__` and under its name) and initialises twice.
"""

import sys

from leut import cli

if __name__ == "__main__":
  sys.exit(cli.main())
