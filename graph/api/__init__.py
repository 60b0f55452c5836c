"""The GraphQL schema: its roots (query, mutation, subscription), resolvers, request context,
cursors, typed errors, Strawberry types (:mod:`.types`) and execution extensions
(:mod:`.extensions`).

It may import :mod:`graph.services`, :mod:`graph.access`, :mod:`graph.settings`, :mod:`storage`
and :mod:`exports`; never :mod:`graph.server` (the schema runs without HTTP, as in
``schema.execute``) nor the CLI.
"""
