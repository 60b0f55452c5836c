"""The cost of a query, counted before it runs: how many objects its answer can hold.

Depth and alias limits do not bound work here: ``executions(first: 500) { edges { node { items
{ execution { items { content } } } } } }`` is shallow yet reads and returns 200,000 items. Like
GitHub's node limit, the cost multiplies page sizes along nested lists:

* a field with ``first``/``last`` (a connection) holds that many rows (``first``/``last`` may be
  variables; neither given: the default page size) in its ``edges`` and ``nodes``;
* ``Execution.items`` holds up to ``items_per_execution`` items (runs hold ~5-20). That is an
  assumption, not a fact: a run may hold thousands. So the items really built are charged again
  while the query runs, from each run's item count and file size in the index, against the
  request's :class:`~graph.api.extensions.limits.ItemBudget`, before its file is read;
* any other list counts as one element (small lists: the sidebar counts, invalid files);
* every object in the answer costs 1 (connections, edges, runs, items, ...); scalars are free.

Fields are collected the way execution collects them: named and inline fragments are expanded,
repeated fields under one response key are merged (they run once), each alias counts on its own,
and for an interface (``node``) the costliest possible type is counted. ``@skip``/``@include`` are
ignored: the cost is an upper bound. Introspection is free here; graphql-core's
``MaxIntrospectionDepthRule`` bounds it (see :mod:`graph.api.extensions.limits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)

from graph.api.paging import PageSizes
from graph.settings import Limits

PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True, slots=True)
class CostModel:
    """How many elements the lists of the schema are assumed to hold."""

    pages: PageSizes
    items_per_execution: int

    @classmethod
    def of(cls, limits: Limits) -> CostModel:
        return cls(pages=PageSizes.of(limits), items_per_execution=limits.items_per_execution)

    def list_size(self, parent: str, field: str) -> int:
        """Assumed length of an unpaged list field."""
        return self.items_per_execution if (parent, field) == ("Execution", "items") else 1


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    model: CostModel,
) -> int:
    """The cost of the operation that would run (0 when there is none to run)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return 0  # execution reports the missing or ambiguous operation
    operation = operations[0]
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    defaults = {
        v.variable.name.value: v.default_value for v in operation.variable_definitions or ()
    }
    counter = _Counter(schema, fragments, dict(variables or {}), defaults, model)
    return counter.selections(root, [operation.selection_set], 1, None)


class _Counter:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        defaults: Mapping[str, ValueNode | None],
        model: CostModel,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.model = model

    def selections(
        self,
        parent: GraphQLNamedType,
        sets: list[SelectionSetNode],
        multiplier: int,
        page: int | None,
    ) -> int:
        """Cost of ``sets`` selected on ``parent``, each value present ``multiplier`` times.

        ``page`` is the page size when ``parent`` is a connection (its lists hold that many).
        """
        if is_abstract_type(parent):
            possible = self.schema.get_possible_types(parent)
            return max((self.selections(t, sets, multiplier, page) for t in possible), default=0)
        if not isinstance(parent, GraphQLObjectType):
            return 0
        total = 0
        for nodes in self.collect(parent, sets).values():
            name = nodes[0].name.value
            field = parent.fields.get(name)
            if field is None or name.startswith("__"):
                continue
            total += self.field(parent, name, field, nodes, multiplier, page)
        return total

    def field(
        self,
        parent: GraphQLObjectType,
        name: str,
        field: GraphQLField,
        nodes: list[FieldNode],
        multiplier: int,
        page: int | None,
    ) -> int:
        named = get_named_type(field.type)
        if is_leaf_type(named):
            return 0
        sets = [n.selection_set for n in nodes if n.selection_set is not None]
        if _is_list(field.type):
            size = page if page is not None else self.model.list_size(parent.name, name)
            count = multiplier * size
            return count + self.selections(named, sets, count, None)
        own_page = self.page_size(field, nodes[0]) if _is_paged(field) else None
        return multiplier + self.selections(named, sets, multiplier, own_page)

    def page_size(self, field: GraphQLField, node: FieldNode) -> int:
        """Rows a connection field returns: its first/last, else the default page size."""
        return self.model.pages.at_most(
            self.argument(node, name) for name in PAGE_ARGUMENTS if name in field.args
        )

    def argument(self, node: FieldNode, name: str) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value: ValueNode | None = argument.value
            if isinstance(value, VariableNode):
                variable = value.name.value
                if variable in self.variables:
                    raw = self.variables[variable]
                    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None
                value = self.defaults.get(variable)
            if isinstance(value, IntValueNode):
                return int(value.value)
        return None

    def collect(
        self, runtime: GraphQLObjectType, sets: Iterable[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        """Fields by response key, fragments expanded for ``runtime`` (as execution does)."""
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def walk(selection_set: SelectionSetNode) -> None:
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self.applies(selection.type_condition, runtime):
                        walk(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if name in visited or fragment is None:
                        continue
                    visited.add(name)
                    if self.applies(fragment.type_condition, runtime):
                        walk(fragment.selection_set)

        for selection_set in sets:
            walk(selection_set)
        return fields

    def applies(self, condition: Any, runtime: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        target = self.schema.get_type(condition.name.value)
        if target is None:
            return False
        if target is runtime:
            return True
        return is_abstract_type(target) and self.schema.is_sub_type(target, runtime)


def _is_list(output: GraphQLOutputType) -> bool:
    inner = output.of_type if isinstance(output, GraphQLNonNull) else output
    return isinstance(inner, GraphQLList)


def _is_paged(field: GraphQLField) -> bool:
    return any(name in field.args for name in PAGE_ARGUMENTS)
