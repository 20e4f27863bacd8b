"""Every setting the project reads from the environment, each defined once.

``fields`` holds the vocabulary: a ``Setting`` (its variable, kind of value, default,
description, whether it is secret, its group) and the kinds of value with their one-line
errors. ``catalog`` defines every setting, the deployment's too (read by Dagster and the
compose file, not by this package's code). The loaders read them into typed settings:
``pipeline`` (Jibble API, warehouse, partitions and late edits), ``digests`` (client
directory, contracts, email, digests, corrections) and ``alerts`` (the daily operations
alert). ``reference`` writes docs/settings.md and deploy/.env.example from the catalog.
"""
