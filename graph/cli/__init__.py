"""The ``execgraph`` command: the click group with ``serve``, ``index``, ``demo`` and ``schema``
(:mod:`.main`), and the ``export``, ``token`` and ``bench`` commands in modules of their own.

The outermost layer: it may import everything (the server, the API, services, access, storage,
exports and :mod:`graph.bench`); nothing imports it.
"""
