"""``execgraph bench``: how fast the real server answers the questions its users ask.

The benchmark builds stores with the project's own record generator, starts the server the way
users run it (``execgraph serve`` in a subprocess, on 127.0.0.1), and measures each query class
over HTTP with one keep-alive client; ratios that the targets speak of (deep page against first
page, our server against an in-memory Strawberry floor, against a naive file-scanning baseline)
are measured in the same run, interleaved, so that they hold on any machine however noisy.

Modules, one concept each:

* :mod:`graph.bench.stores`: stores and indexes, cached under the user cache folder;
* :mod:`graph.bench.client`: the keep-alive HTTP client, its concurrent variant, the in-process
  ASGI driver and the file-open counter;
* :mod:`graph.bench.canned`: a server that answers instantly, to measure the client's overhead;
* :mod:`graph.bench.baselines`: the naive REST baseline and the in-memory Strawberry floor;
* :mod:`graph.bench.servers`: server subprocesses, their readiness and peak memory;
* :mod:`graph.bench.queries`: the query classes, as the UI and researchers send them;
* :mod:`graph.bench.results`: what a run measured (written as JSON);
* :mod:`graph.bench.report`: targets with pass or miss, and the printed table;
* :mod:`graph.bench.runner`: the phases of a run.
"""
