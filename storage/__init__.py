"""The record store: on-disk models, the tolerant reader, path safety, the index and watching.

Nothing in this package imports Strawberry: it is usable on its own (CLI, exports, tests).
"""
