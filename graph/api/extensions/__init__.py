"""What runs around every GraphQL operation: the request limits and time budget
(:mod:`.limits`), the cost model (:mod:`.cost`) and the masking of unexpected errors
(:mod:`.masking`).

Part of :mod:`graph.api`: it imports the API's errors, :mod:`graph.access` and
:mod:`graph.settings`, never the HTTP side.
"""
