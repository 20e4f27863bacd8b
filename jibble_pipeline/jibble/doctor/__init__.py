"""``jibble-pipeline doctor``: what this Jibble tenant does, found with a few dozen small
requests, and what the pipeline will do about it (docs/jibble-api.md).

``probes`` asks the tenant, ``estimates`` works out what a run would cost, ``findings`` holds
what was found and ``report`` prints it (a table or JSON) and writes the redacted samples.
"""
