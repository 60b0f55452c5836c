"""The HTTP side: the Starlette app factory and its lifespan (:mod:`.app`), the GraphQL endpoint
(:mod:`.endpoint`), middleware, the offline GraphiQL page, export downloads and the WebSocket
transport.

The top of the request path: it may import :mod:`graph.api`, :mod:`graph.services`,
:mod:`graph.access`, :mod:`graph.settings`, :mod:`storage` and :mod:`exports`; nothing below
imports it (only the CLI, which starts it).
"""
