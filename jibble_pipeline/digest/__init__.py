"""Weekly client digests and the internal report site.

Pure logic only (no Dagster here except ``resources``): the client directory and its
sources (``directory``), a client's week built from DataFrames (``content``), HTML and text
(``render``), the two email senders (``email``), sending a run's digests once each through
the ``sent_digests`` log (``sending``), the static report site (``site``), a week of digests
and of site pages as the assets store and show them (``weeks``) and the environment settings
(``settings``). The Dagster wiring is in ``jibble_pipeline.assets.digests`` and
``jibble_pipeline.automation.digests``.
"""
