"""Weekly client digests, their corrections and the internal report site.

Pure logic only (no Dagster here except ``resources``): the client directory and its
sources, contracts included (``directory``), a client's week built from DataFrames
(``content``), HTML and text (``render``), a run's digests and corrections as deliveries of
their send logs (``sending``; sending itself is ``jibble_pipeline.delivery``), the exports
(``exports``), the as-reported ledger (``ledger``), corrections of reported weeks
(``corrections``: what changed and why, pure; ``correction_week``: a week of them), the
static report site (``site``) with its charts (``charts``) and what each client was told
(``history``), a week of digests and of site pages as the assets store and show them
(``weeks``). Their settings are in ``jibble_pipeline.settings.digests``. The Dagster wiring is in
``jibble_pipeline.assets`` (``digests``, ``corrections``) and ``jibble_pipeline.automation``
(``digests``, ``corrections``).
"""
