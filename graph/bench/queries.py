"""The query classes the benchmark sends: what the UI, GraphiQL users and researchers ask.

Each class is a fixed query text (so Strawberry's parser and validation caches see the same
document every time, as they do for a real UI) with variables; the in-memory floor answers the
same texts, so that a ratio against it isolates what storage costs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

#: The UI's list page: about ten summary fields of a run.
LIST_FIELDS: Final = (
    "executionId configName timestamp userId sessionId safetyLevel executionMode "
    "itemCount totalExecutionTime usedSeed"
)
#: Every field of an item, as the detail view and researchers ask them.
ITEM_FIELDS: Final = (
    "sequenceNumber timestamp stage stageIteration loopIteration mediaType rawMediaType "
    "itemType rawItemType content filePath configUsed modelUsed backendType executionTime "
    "metadata"
)
#: The one filter of the list page (about one run in ten is a Stille Post run).
LIST_CONFIG: Final = "stillepost"
#: A model of Stille Post iterations, for the cross-run search.
SEARCH_MODEL: Final = "local/gpt-oss:20b"

TYPENAME: Final = "{ __typename }"

LIST_PAGE: Final = f"""query RunList($after: String) {{
  executions(filter: {{configNames: ["{LIST_CONFIG}"]}}, first: 50, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {LIST_FIELDS} }} }}
  }}
}}"""

#: The list page with a filter that changes on every request, so ``totalCount`` is computed
#: each time instead of coming from the count cache (as after any change to the store).
LIST_PAGE_FRESH: Final = f"""query RunListFresh($until: DateTime!) {{
  executions(filter: {{configNames: ["{LIST_CONFIG}"], until: $until}}, first: 50) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {LIST_FIELDS} }} }}
  }}
}}"""

#: The same, without ``totalCount``: the difference is what counting costs.
LIST_PAGE_FRESH_NO_COUNT: Final = f"""query RunListFreshNoCount($until: DateTime!) {{
  executions(filter: {{configNames: ["{LIST_CONFIG}"], until: $until}}, first: 50) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {LIST_FIELDS} }} }}
  }}
}}"""

#: A cursor near the end of the list page's filter: the start of the last page of 51.
LAST_CURSOR: Final = f"""{{
  executions(filter: {{configNames: ["{LIST_CONFIG}"]}}, last: 51) {{ edges {{ cursor }} }}
}}"""

#: Candidates for the detail view: the Stille Post runs with the most items are the largest.
DETAIL_CANDIDATES: Final = f"""{{
  executions(filter: {{configNames: ["{LIST_CONFIG}"]}}, first: 200) {{
    edges {{ node {{ executionId itemCount }} }}
  }}
}}"""

DETAIL: Final = f"""query Run($id: String!) {{
  execution(executionId: $id) {{
    executionId configName timestamp safetyLevel usedSeed totalExecutionTime
    items {{ {ITEM_FIELDS} }}
  }}
}}"""

ITEMS_50: Final = f"""{{
  executions(first: 50) {{ edges {{ node {{ executionId items {{ {ITEM_FIELDS} }} }} }} }}
}}"""

SEARCH: Final = f"""{{
  items(
    filter: {{itemTypes: [INTERCEPTION_ITERATION], modelsUsed: ["{SEARCH_MODEL}"]}}
    first: 50
  ) {{
    totalCount
    edges {{ node {{ stageIteration content modelUsed execution {{ executionId safetyLevel }} }} }}
  }}
}}"""

STATS: Final = """{
  storageStats(filter: { safetyLevels: ["kids"] }) {
    totalRecords
    byConfig { value count }
    bySafetyLevel { value count }
    byDay { value count }
  }
}"""

#: The newest few runs: where a freshly written run must appear.
NEWEST: Final = "{ executions(first: 5) { edges { node { executionId } } } }"

#: One-client classes, in the order of the table.
ONE_CLIENT_CLASSES: Final = (
    "typename",
    "list",
    "deep",
    "list_count_fresh",
    "list_nocount_fresh",
    "detail",
    "items50",
    "search",
    "stats",
)
#: Classes the in-memory floor answers too.
FLOOR_CLASSES: Final = ("typename", "list", "detail")

CLASS_TITLES: Final = {
    "typename": "{__typename}",
    "list": "list page (50, filter, totalCount)",
    "deep": "deep page (last 50)",
    "list_count_fresh": "list, totalCount not cached",
    "list_nocount_fresh": "list, no totalCount",
    "detail": "one run with all items",
    "items50": "50 runs with items",
    "search": "item search + totalCount",
    "stats": "storageStats",
}

QUERY_TEXTS: Final = {
    "typename": TYPENAME,
    "list": LIST_PAGE,
    "deep": LIST_PAGE,
    "list_count_fresh": LIST_PAGE_FRESH,
    "list_nocount_fresh": LIST_PAGE_FRESH_NO_COUNT,
    "detail": DETAIL,
    "items50": ITEMS_50,
    "search": SEARCH,
    "stats": STATS,
}

#: ``until`` values of the fresh-count classes count down from here (after every generated run).
_FRESH_UNTIL: Final = datetime(2026, 3, 1)


def fresh_until(serial: int) -> str:
    """A distinct ``until`` for request ``serial``: one second earlier each time."""
    return (_FRESH_UNTIL - timedelta(seconds=serial)).isoformat()
