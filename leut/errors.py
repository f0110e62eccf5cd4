"""The base classes of leut's own errors and warnings, so the command line can tell them from bugs.

A `LeutError` is an expected failure with a message that says what is wrong and how to fix it (a missing file, a
bad config field, a workdir in use); `leut` prints it as one line and exits with status 2. Any other exception is a
bug or an environment failure (an I/O error, out of memory) and keeps its traceback. Subclasses may also derive from
the built-in class they refine (`ValueError`, `FileNotFoundError`), so callers that catch those keep working.
"""

from __future__ import annotations


class LeutError(Exception):
  """An expected failure whose message alone tells the user what to fix (`leut ...: error: <message>`, exit 2)."""


class ConfigError(LeutError, ValueError):
  """A config field, an override or a config file is invalid; the message names the field."""


class WorkdirError(LeutError):
  """A workdir cannot be used as asked: in use by another run, incomplete results, missing checkpoints."""


class LeutWarning(UserWarning):
  """Something the user should know that does not stop the run (printed as one `leut: warning:` line)."""


class StimulusMismatchError(LeutError, ValueError):
  """Externally computed features do not name exactly the brain data's stimuli (the message lists the differences)."""
