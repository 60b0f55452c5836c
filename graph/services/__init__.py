"""Application services shared by the API and the CLI: export jobs (:mod:`.export_jobs`), the
change broadcast to subscribers (:mod:`.broadcast`), the per-index-version cache (:mod:`.cache`)
and progress bars (:mod:`.progress`).

It may import :mod:`storage`, :mod:`exports`, :mod:`graph.settings` and :mod:`graph.errors`
(the typed errors every layer raises); never :mod:`graph.api`, :mod:`graph.server` nor the CLI.
"""
