"""The record store: on-disk models, the tolerant reader, path safety, the index and watching.

Nothing in this package imports Strawberry or anything above it: it is usable on its own (CLI,
exports, tests). :mod:`storage.demo` (demo and test data) sits on the core; the core never
imports it.
"""
