"""Delivering messages, for the digests and the operations alert alike: what a message is
(``message``), the email backends (``email``) and the email resource (``resources``), the
Slack or Teams webhook (``webhook``), the send logs (``sent_log``), sending a run's messages
each once through a log (``sending``) and what a sending asset does with a run's dry run,
force and outcomes (``policy``).
"""
