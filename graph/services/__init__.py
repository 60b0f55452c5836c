"""Application services shared by the API and the CLI: export jobs (:mod:`.export_jobs`), the
change broadcast to subscribers (:mod:`.broadcast`), the per-index-version cache (:mod:`.cache`)
and progress bars (:mod:`.progress`).

It may import :mod:`storage`, :mod:`exports` and :mod:`graph.settings`; never :mod:`graph.server`
nor the CLI. (Export jobs raise the API's typed errors from :mod:`graph.api.errors`.)
"""
