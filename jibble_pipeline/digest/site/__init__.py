"""The internal report site: static HTML pages, one folder per week, relative links only, so
it opens from disk or behind any static file server.

Where each page lives is ``paths``; the pages' view models (an agent's week from the
sessions and attendance frames, the geometry of its timeline) are ``pages``. Rendering is
pure (``render``: ``render_week``, ``render_index``, ``digest_files`` return ``{relative
path: text}``); ``publish`` writes a folder of them (text, or bytes for the exports) and
swaps it in whole.
"""
