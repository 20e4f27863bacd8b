import warnings

import dagster as dg

# Single-run backfill policies and the week -> days partition mapping are marked beta in
# Dagster 1.13; the project relies on them deliberately, so their warnings are noise.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
