"""The client directory: which client (an email address) receives the digest of which Jibble
groups, with its contract: the clients and the rules every source is read by (``clients``),
and the sources, Airtable or a YAML/CSV file (``sources``).
"""
