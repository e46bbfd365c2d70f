"""Contracts: every message on the wire (one typed definition each, with a
`schema_version`), topic names and configs, settings, SQL and migrations. No I/O."""
