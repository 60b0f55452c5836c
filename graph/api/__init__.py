"""The GraphQL schema: its roots (query, mutation, subscription), resolvers, request context,
cursors, page sizes, Strawberry types (:mod:`.types`) and execution extensions
(:mod:`.extensions`).

It may import :mod:`graph.services`, :mod:`graph.access`, :mod:`graph.settings`,
:mod:`graph.errors`, :mod:`storage`
and :mod:`exports`; never :mod:`graph.server` (the schema runs without HTTP, as in
``schema.execute``) nor the CLI.
"""
