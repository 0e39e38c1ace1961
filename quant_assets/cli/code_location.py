"""The code location as the CLI loads it: once, without Dagster's API-maturity warnings."""

import warnings

import dagster as dg


def quiet_dagster_maturity_warnings() -> None:
    """Keep Dagster's beta/preview notices off the command line for this process.

    Runs the CLI executes in-process import and build the code location again in places
    (step contexts); the notices concern the API we chose, not the user's input.
    """
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def load_definitions() -> dg.Definitions:
    """Return the project's definitions.

    Dagster warns at load that `backfill_policy` is beta and partitioned asset checks are a
    preview; both are used knowingly (pyproject's pytest filters say why), and a user of the
    command line has nothing to do about them, so they are not printed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from quant_assets.definitions import defs

        return defs()
