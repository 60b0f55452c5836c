"""Query limits: what one GraphQL document may ask of the server, checked before it runs.

Strawberry ships none of these switched on. Here, for every operation (HTTP and WebSocket):

* **tokens** (graphql-core's parser option, set as Strawberry's ``MaxTokensLimiter`` does):
  parsing stops beyond ``max_tokens``;
* **depth** and **aliases** (``QueryDepthLimiter``, ``MaxAliasesLimiter``) and introspection
  nesting (graphql-core's ``MaxIntrospectionDepthRule``) are validation rules: an operation over a
  limit is refused with no resolver run;

  each limit's error carries its code: ``TOO_MANY_TOKENS`` (given on the way out, see
  :func:`graph.api.extensions.masking.request_error_code`), ``QUERY_TOO_DEEP`` (depth,
  introspection's too) and ``TOO_MANY_ALIASES`` (the rules are wrapped by :func:`coded_rule`);
* **cost** (:mod:`graph.api.extensions.cost`): an operation whose answer could hold more than
  ``max_cost`` objects is refused with ``QUERY_TOO_COMPLEX`` before execution (it needs the
  variables, so it runs as execution starts rather than as a validation rule);
* **items built** (:class:`ItemBudget`, one per request in the context): the cost above assumes
  ``items_per_execution`` items a run, but a run may hold thousands. So the items a request
  builds are also charged, while it runs and before any file is read, with the runs' real item
  counts and file sizes as the index knows them; the first charge over ``max_items_per_request``
  or ``max_item_bytes_per_request`` fails (nothing is read or built for that run) and the whole
  request is refused with ``QUERY_TOO_COMPLEX`` giving the figures;
* **time**: a query running longer than ``timeout_s`` is stopped with ``TIMEOUT``: the request's
  task is cancelled at the deadline. Resolvers do their SQLite work synchronously on the event
  loop, where a cancellation cannot interrupt them, so the request's deadline is also checked by
  a SQLite progress handler, which aborts a long statement (the connection stays usable for the
  next request), and by the worker thread reading record files, which stops between files
  (:func:`current_deadline`); what runs on the loop between two awaits is bounded by the item
  budget;
* **production mode**: introspection only with a valid token (field suggestions are removed by
  :class:`graph.api.schema.ExecgraphSchema`).

Strawberry's depth and alias limiters build a new rule class in ``__init__``; a factory calling
them per request would make every request miss the shared ``ValidationCache`` (its key holds the
rule classes). So each limiter is built once per schema and its rules handed on per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any, Final

import orjson
from graphql import ASTValidationRule, GraphQLError, MaxIntrospectionDepthRule, specified_rules
from graphql.validation import NoSchemaIntrospectionCustomRule, ValidationContext
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.types.graphql import OperationType

from graph.access.permissions import principal_of_context
from graph.api.extensions.cost import CostModel, query_cost
from graph.api.extensions.masking import MaskUnexpectedErrors, with_code
from graph.errors import ErrorCode, QueryTooComplex, Timeout
from graph.settings import Limits

#: SQLite virtual-machine steps between two looks at the deadline (well under a millisecond).
PROGRESS_STEPS: Final = 20_000

_deadline: ContextVar[float | None] = ContextVar("execgraph_deadline", default=None)


class ItemBudget:
    """The items (and record-file bytes) one request may still build, charged from facts.

    Charges keep adding up after the first refusal, so that the final error gives the figures
    of every run the query reached, not only the first one over.
    """

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.items = 0
        self.bytes = 0
        self.exceeded = False

    @classmethod
    def of(cls, limits: Limits) -> ItemBudget:
        return cls(limits.max_items_per_request, limits.max_item_bytes_per_request)

    def charge(self, items: int, size: int) -> None:
        """Count ``items`` items from record files of ``size`` bytes about to be built; raise
        :class:`QueryTooComplex` (and build nothing) when the request goes over either limit."""
        self.items += items
        self.bytes += size
        if self.exceeded or self.items > self.max_items or self.bytes > self.max_bytes:
            self.exceeded = True
            raise self.refusal()

    def refusal(self) -> QueryTooComplex:
        """The error refusing the request, with the figures charged so far."""
        if self.items > self.max_items:
            reason = (
                f"the runs whose items this query asks for hold at least {self.items} items; "
                f"at most {self.max_items} are built per request"
            )
        else:
            reason = (
                f"the items this query asks for come from at least {self.bytes} bytes of record "
                f"files; at most {self.max_bytes} bytes are built per request"
            )
        return QueryTooComplex(
            f"{reason}. Ask for fewer runs (first), filter their items, or page through "
            "items(first:, after:).",
            items=self.items,
            maxItems=self.max_items,
            itemBytes=self.bytes,
            maxItemBytes=self.max_bytes,
        )


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """The schema extension enforcing ``limits``, as a factory (one instance per request).

    One extension rather than one per limit: Strawberry wraps every hook of every extension on
    every request, and that bookkeeping was most of what ``{ __typename }`` cost beyond the bare
    stack.
    """
    depth = QueryDepthLimiter(max_depth=limits.max_query_depth).validation_rules
    aliases = MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules
    # graphql-core's rules, its introspection depth rule replaced by the coded one.
    rules: tuple[type[ASTValidationRule], ...] = (
        *(rule for rule in specified_rules if rule is not MaxIntrospectionDepthRule),
        *(coded_rule(rule, ErrorCode.QUERY_TOO_DEEP) for rule in depth),
        *(coded_rule(rule, ErrorCode.TOO_MANY_ALIASES) for rule in aliases),
        coded_rule(MaxIntrospectionDepthRule, ErrorCode.QUERY_TOO_DEEP),
    )
    limits = limits.limits()  # a copy: the schema's limits do not change while it serves
    cost_model = CostModel.of(limits)
    return [lambda: QueryGuard(limits, cost_model, rules)]


def coded_rule(rule: type[ASTValidationRule], code: ErrorCode) -> type[ASTValidationRule]:
    """``rule``, with ``code`` on every error it reports.

    Strawberry's limiters report from ``__init__`` through the validation context, graphql-core's
    rules through ``report_error`` while visiting: both ways are covered.
    """

    class CodedRule(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            on_error = context.on_error
            context.on_error = lambda error: on_error(with_code(error, code))  # type: ignore[method-assign]
            try:
                super().__init__(context)
            finally:
                context.on_error = on_error  # type: ignore[method-assign]

        def report_error(self, error: GraphQLError) -> None:
            super().report_error(with_code(error, code))

    CodedRule.__name__ = CodedRule.__qualname__ = f"{rule.__name__}Coded"
    return CodedRule


class _IntrospectionRefused(NoSchemaIntrospectionCustomRule):
    """graphql-core's rule, with one error whose message and code say what to do."""

    reported = False

    def report_error(self, error: GraphQLError) -> None:
        if not self.reported:
            self.reported = True
            super().report_error(
                GraphQLError(
                    "introspection needs a valid token on this server (production mode)",
                    error.nodes,
                    extensions={"code": "FORBIDDEN"},
                )
            )


_COST_CACHE_SIZE: Final = 1024
_COSTS: dict[tuple[Any, ...], int] = {}


def _frozen(variables: Any) -> bytes:
    """A hashable, order-independent form of the request's variables."""
    try:
        return orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return repr(variables).encode()


class QueryGuard(MaskUnexpectedErrors):
    """Every limit of one request: tokens, validation rules, introspection, cost and time;
    and, on the way out, the masking of unexpected errors (see :mod:`graph.api.extensions.masking`).

    Masking comes last, after the limits' own typed errors (``TIMEOUT``,
    ``QUERY_TOO_COMPLEX``) have replaced a result: those are expected and reach the client.
    """

    def __init__(
        self, limits: Limits, cost_model: CostModel, rules: tuple[type[ASTValidationRule], ...]
    ) -> None:
        super().__init__()
        self.limits = limits
        self.cost_model = cost_model
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        # The parser stops beyond max_tokens (on a parser-cache miss; a cached document was
        # parsed under the same limit).
        ctx.parse_options["max_tokens"] = self.limits.max_tokens
        rules = self.rules
        if self.limits.production:
            principal = principal_of_context(ctx.context)
            if principal is None or not principal.via_token:
                rules = (*rules, _IntrospectionRefused)
        ctx.validation_rules = rules  # graphql-core's and the limits' (see limit_extensions)
        yield from super().on_operation()

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        self.check_cost()
        if ctx.operation_type is not OperationType.QUERY:
            yield  # mutations and subscriptions are not cut short
            return
        seconds = self.limits.request_timeout_s
        deadline = time.monotonic() + seconds
        token = _deadline.set(deadline)
        try:
            async with asyncio.timeout(seconds):  # cancels the request's task at the deadline
                yield
        except TimeoutError:
            raise self.timeout() from None
        finally:
            _deadline.reset(token)
        budget = getattr(ctx.context, "item_budget", None)
        if isinstance(budget, ItemBudget) and budget.exceeded:
            raise budget.refusal()  # the whole request: no partial answer
        if time.monotonic() > deadline:  # a SQLite statement was aborted, or a resolver blocked
            raise self.timeout()

    def check_cost(self) -> None:
        """Refuse an operation whose answer could hold more than ``max_cost`` objects."""
        ctx = self.execution_context
        if ctx.graphql_document is None:
            return
        model, max_cost = self.cost_model, self.limits.max_query_cost
        # The same query with the same variables always costs the same: count it once.
        key = (ctx.query, ctx.operation_name, _frozen(ctx.variables), model)
        cost = _COSTS.get(key)
        if cost is None:
            cost = query_cost(
                ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables, model
            )
            if len(_COSTS) >= _COST_CACHE_SIZE:
                _COSTS.clear()
            _COSTS[key] = cost
        if cost > max_cost:
            raise QueryTooComplex(
                f"this query could return {cost} objects; at most {max_cost} are allowed. "
                "Ask for smaller pages (first/last; default "
                f"{model.pages.default}) or fewer nested lists (each run's items "
                f"count {model.items_per_execution}).",
                cost=cost,
                maxCost=max_cost,
            )

    def timeout(self) -> Timeout:
        seconds = self.limits.request_timeout_s
        return Timeout(
            f"the query ran longer than {seconds:g} s and was stopped; ask for fewer "
            "runs or items, or a narrower filter",
            limitSeconds=seconds,
        )


def past_deadline() -> bool:
    """Whether the current request's deadline has passed (never, outside a request).

    The app has the index's statements abort when it says so, every :data:`PROGRESS_STEPS`
    (``Catalog.abort_statements_when``).
    """
    deadline = _deadline.get()
    return deadline is not None and time.monotonic() > deadline


def current_deadline() -> float | None:
    """The current request's deadline (``time.monotonic()`` seconds), None outside a query.

    For work handed to a worker thread, which does not see the request's context variables.
    """
    return _deadline.get()
