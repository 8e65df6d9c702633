"""Sources to unified profiles: ingest, validate, unify, store."""
