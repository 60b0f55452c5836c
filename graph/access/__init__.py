"""Who may do what: bearer tokens and their roles (:mod:`.tokens`), and the checks that fields
and routes apply to the identified principal (:mod:`.permissions`).

Used by :mod:`graph.server` (identification, route checks) and :mod:`graph.api` (field checks).
It imports the standard library and :mod:`graph.errors` (the typed errors a refusal raises),
nothing of the HTTP side.
"""
