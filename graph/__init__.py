"""The HTTP-facing layer: app factory, settings, GraphQL schema, resolvers and the CLI."""

__version__ = "0.1.0"
