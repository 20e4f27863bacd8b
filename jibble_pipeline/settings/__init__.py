"""Every setting the project reads from the environment, each defined once.

``fields`` holds the vocabulary: a ``Setting`` (its variable, kind of value, default,
description, whether it is secret, its group) and the kinds of value with their one-line
errors. The settings themselves are defined next to the model they load into:
``pipeline`` (Jibble API, warehouse, partitions and late edits), ``digests`` (client
directory, contracts, email, digests, corrections), ``alerts`` (the daily operations alert)
and ``deployment`` (read by Dagster and the compose file, not by this package's code).
``reference`` writes docs/settings.md and deploy/.env.example from those definitions.
"""
