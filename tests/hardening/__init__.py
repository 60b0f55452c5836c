"""Hardening suites: fuzzing, hostile input, malformed stores, concurrent writers, load."""
