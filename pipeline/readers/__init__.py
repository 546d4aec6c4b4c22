"""Readers: turn one input file into batches of Record rows plus quarantine rows."""
