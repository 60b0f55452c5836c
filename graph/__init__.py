"""The service: :mod:`.server` (HTTP), :mod:`.api` (the GraphQL schema), :mod:`.services`,
:mod:`.access` (tokens, permissions), :mod:`.cli`, :mod:`.bench` and one :mod:`.settings`.

Imports run one way: cli -> server -> api -> services -> storage and exports; access is used by
the server and the API. See the README's "Architecture" section.
"""

__version__ = "0.1.0"
