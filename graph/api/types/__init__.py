"""Strawberry types of the public schema, one concept per module."""
