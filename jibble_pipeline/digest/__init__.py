"""Weekly client digests and the internal report site.

Pure logic only (no Dagster here except ``resources``): the client directory and its
sources (``directory``), a client's week built from DataFrames (``content``), HTML and text
(``render``), the two email senders (``email``), the static report site (``site``) and the
environment settings (``settings``). The Dagster wiring is in ``jibble_pipeline.assets.digests``
and ``jibble_pipeline.automation.digests``.
"""
