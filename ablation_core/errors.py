"""Errors that ablation_core raises for callers to report."""


class AblationInputError(ValueError):
    """Invalid user input. The message is one line that names the value and the fix."""


class DeltaMismatchError(AblationInputError):
    """A delta that does not fit the weights it is applied to."""


class AblationCancelled(RuntimeError):
    """A progress callback asked to stop the run."""
