"""Scenario files: their schema, validation and compilation into a frozen graph.

`load_scenario(path, settings)` checks everything before anything runs and returns a
`Scenario`, or raises ScenarioError listing every problem, each naming the file, the node,
the field and the YAML line. A scenario is compiled once and frozen; the runtime only
reads it.

    id: welcome
    name: Welcome series
    settings: {consent_category: sms_marketing, frequency_policy: default, sender: main}
    audience: "customer.country == 'US'"
    nodes:
      - {id: start, type: trigger, on: launch}
      - {id: hello, type: sms, text: "Hi {{ customer.first_name }}!"}
    edges:
      - {from: start, to: hello}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import Problem, ScenarioError
from engine.links import link_rules
from engine.settings import IdentityTransfer, Settings, UtmMode
from engine.silent_hours import SilentHours
from engine.templates import expression_error
from nodes import NODE_TYPES
from nodes.base import NodeConfig
from nodes.trigger import TriggerNode

TrackingValue = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ManualUtm(_Strict):
    """The seed's manual link transformation: the UTM values given replace the automatic
    ones (`engine/links.py`); those left out keep theirs."""

    utm_source: str | None = Field(default=None, min_length=1)
    utm_medium: str | None = Field(default=None, min_length=1)
    utm_campaign: str | None = Field(default=None, min_length=1)


class ScenarioLinks(_Strict):
    """The scenario's link shortener, identity transfer and link transformation; each
    one left out is the project's (`links:` in the settings)."""

    shorten: bool | None = None
    identity: IdentityTransfer | None = None
    utm: UtmMode | ManualUtm | None = None

    @field_validator("utm", mode="before")
    @classmethod
    def _utm(cls, value: object) -> object:
        # One clear message rather than one per member of the union.
        if isinstance(value, str) and value not in ("auto", "none"):
            raise ValueError(
                f"utm is 'auto', 'none' or {{utm_source, utm_medium, utm_campaign}}, not {value!r}"
            )
        return value


class ScenarioSettings(_Strict):
    """Campaign settings shared by every message node of the scenario."""

    consent_category: str
    frequency_policy: str | None = None
    # Omitted: the project's default silent hours; "none": this scenario ignores them.
    silent_hours: SilentHours | Literal["none"] | None = None
    sender: str | None = None
    tracking: dict[str, TrackingValue] = Field(default_factory=dict)
    links: ScenarioLinks = Field(default_factory=ScenarioLinks)


class Edge(_Strict):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    when: str = "next"

    @field_validator("when", mode="before")
    @classmethod
    def _branch_name(cls, value: object) -> object:
        # YAML reads `when: true` as a boolean; branch names are strings.
        return str(value).lower() if isinstance(value, bool) else value


class ScenarioFile(_Strict):
    """The top level of a scenario file; nodes are validated by their own type's model."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    settings: ScenarioSettings
    audience: str | None = None
    nodes: list[dict[str, Any]]
    edges: list[Edge] = Field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """A validated, compiled scenario. Immutable: the runtime only reads it."""

    id: str
    name: str
    version: str
    source: str
    settings: ScenarioSettings
    audience: str | None
    nodes: dict[str, NodeConfig]
    order: tuple[str, ...]  # topological: a node's predecessors come before it
    routes: dict[tuple[str, str], str]  # (node, output) -> next node
    action_ids: dict[str, int]  # message nodes numbered 1, 2, ... in file order
    definition: dict[str, Any]

    @property
    def trigger(self) -> TriggerNode:
        node = self.nodes[self.order[0]]
        assert isinstance(node, TriggerNode)
        return node

    def next_node(self, node_id: str, output: str) -> str | None:
        return self.routes.get((node_id, output))

    def silent_hours(self, settings: Settings) -> SilentHours | None:
        if self.settings.silent_hours == "none":
            return None
        return self.settings.silent_hours or settings.silent_hours


def scenario_version(definition: dict[str, Any]) -> str:
    """A short content hash: the same definition always has the same version."""
    canonical = json.dumps(definition, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def load_scenario(path: Path | str, settings: Settings, now: datetime | None = None) -> Scenario:
    """The scenario in the file at `path`; `now` (validate and launch give it) also
    refuses a schedule `at` already past."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError([Problem(str(path), f"cannot read the file: {exc.strerror}")]) from exc
    return parse_scenario(text, str(path), settings, now)


def parse_scenario(
    text: str, source: str, settings: Settings, now: datetime | None = None
) -> Scenario:
    """Every problem of the file at once: duplicate keys, the schema, each node, the
    settings, the graph (on what parsed, even when something else did not)."""
    tree, raw, duplicates = _read_yaml(text, source)
    lines = _LineIndex(tree)
    if not isinstance(raw, dict):
        raise ScenarioError([Problem(source, "the top level must be a mapping", line=1)])
    problems = [_duplicate_problem(source, lines, raw, *duplicate) for duplicate in duplicates]
    try:
        file: ScenarioFile | None = ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, source, lines)
        file = None
    try:
        return _compile(file, raw, source, settings, lines, problems, now)
    except RecursionError as exc:  # a value nested too deep for a validator
        problems.append(Problem(source, f"the file {_TOO_DEEP}"))
        raise ScenarioError(problems) from exc


_TOO_DEEP = "nests too deeply to be read"


class _Loader(yaml.SafeLoader):
    """SafeLoader noting each repeated key of a mapping (PyYAML keeps the last one)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[yaml.MappingNode, yaml.Node, yaml.Node]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, _value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in first:
                    self.duplicates.append((node, first[(key.tag, key.value)], key))
                else:
                    first[(key.tag, key.value)] = key
        return super().construct_mapping(node, deep)


def _read_yaml(
    text: str, source: str
) -> tuple[yaml.Node | None, Any, list[tuple[yaml.MappingNode, yaml.Node, yaml.Node]]]:
    """The node tree (for line numbers), the data, and the repeated keys."""
    loader = _Loader(text)
    try:
        tree = loader.get_single_node()
        raw = loader.construct_document(tree) if tree is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ScenarioError([Problem(source, f"not valid YAML: {exc}", line=line)]) from exc
    except RecursionError as exc:
        raise ScenarioError([Problem(source, f"the YAML {_TOO_DEEP}")]) from exc
    finally:
        loader.dispose()
    return tree, raw, loader.duplicates


def _duplicate_problem(
    source: str,
    lines: _LineIndex,
    raw: dict[str, Any],
    mapping: yaml.MappingNode,
    first: yaml.Node,
    again: yaml.Node,
) -> Problem:
    path = lines.path_of(mapping)
    node = None
    if len(path) >= 2 and path[0] == "nodes":
        spec = raw["nodes"][path[1]]
        has_id = isinstance(spec, dict) and isinstance(spec.get("id"), str)
        node = spec["id"] if has_id else f"#{int(path[1]) + 1}"
        path = path[2:]
    return Problem(
        source,
        f"duplicate key '{again.value}' (first on line {first.start_mark.line + 1}): "
        "YAML would keep only the last",
        node,
        ".".join(str(part) for part in (*path, again.value)),
        again.start_mark.line + 1,
    )


def _compile(
    file: ScenarioFile | None,
    raw: dict[str, Any],
    source: str,
    settings: Settings,
    lines: _LineIndex,
    problems: list[Problem],
    now: datetime | None,
) -> Scenario:
    """Checks each part that parsed; `problems` holds those found so far."""
    nodes: dict[str, NodeConfig] = {}
    node_index: dict[str, int] = {}
    invalid: set[str] = set()  # nodes already reported: their edges are not "unknown"
    specs, edges, complete = _parts(file, raw)
    for index, spec in specs:
        node = _node(spec, index, source, settings, lines, problems)
        if node is None:
            complete = False
            if isinstance(spec.get("id"), str):
                invalid.add(spec["id"])
            continue
        if node.id in nodes:
            complete = False
            problems.append(
                Problem(source, "duplicate node id", node.id, "id", lines.at("nodes", index, "id"))
            )
            continue
        nodes[node.id] = node
        node_index[node.id] = index
        if now is not None:
            problems += _past_problems(node, source, lines.at("nodes", index, "at"), now)

    problems += _settings_problems(raw, source, settings, lines)
    routes, graph_problems = _routes(edges, nodes, invalid, source, lines)
    problems += graph_problems
    order: tuple[str, ...] = ()
    # The graph's own checks need all of it: a node missing would look unreachable.
    if complete and not graph_problems:
        order, order_problems = _order(nodes, routes, source, lines, node_index)
        problems += order_problems
    if problems or file is None:
        raise ScenarioError(problems)

    actions = [node_id for node_id in nodes if nodes[node_id].is_action]
    return Scenario(
        id=file.id,
        name=file.name,
        version=scenario_version(raw),
        source=source,
        settings=file.settings,
        audience=file.audience,
        nodes=nodes,
        order=order,
        routes=routes,
        action_ids={node_id: number for number, node_id in enumerate(actions, start=1)},
        definition=raw,
    )


def _parts(
    file: ScenarioFile | None, raw: dict[str, Any]
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, Edge]], bool]:
    """The node specs and edges to check, with their indexes, and whether they are all
    of them. Without a valid file, those of the raw data that parse on their own (the
    others are already reported)."""
    if file is not None:
        return list(enumerate(file.nodes)), list(enumerate(file.edges)), True
    raw_nodes = raw.get("nodes") if isinstance(raw.get("nodes"), list) else []
    raw_edges = raw.get("edges", []) if isinstance(raw.get("edges", []), list) else []
    specs = [(i, spec) for i, spec in enumerate(raw_nodes) if isinstance(spec, dict)]
    edges = []
    for index, item in enumerate(raw_edges):
        try:
            edges.append((index, Edge.model_validate(item)))
        except ValidationError:
            continue
    complete = len(specs) == len(raw_nodes) and len(edges) == len(raw_edges)
    return specs, edges, complete and "nodes" in raw


def _past_problems(node: NodeConfig, source: str, line: int | None, now: datetime) -> list[Problem]:
    if isinstance(node, TriggerNode) and node.at is not None and node.next_fire(now) is None:
        return [
            Problem(
                source,
                f"at {node.at.isoformat()} ({node.timezone}) is in the past: "
                "the scenario would never start",
                node.id,
                "at",
                line,
            )
        ]
    return []


def _node(
    spec: dict[str, Any],
    index: int,
    source: str,
    settings: Settings,
    lines: _LineIndex,
    problems: list[Problem],
) -> NodeConfig | None:
    given = spec.get("id")
    node_id = given if isinstance(given, str) and given.strip() else f"#{index + 1}"
    node_type = spec.get("type")
    model = NODE_TYPES.get(node_type) if isinstance(node_type, str) else None
    if model is None:
        known = ", ".join(sorted(NODE_TYPES))
        problems.append(
            Problem(
                source,
                f"unknown node type {node_type!r}; known types: {known}",
                node_id,
                "type",
                lines.at("nodes", index, "type"),
            )
        )
        return None
    try:
        node = model.model_validate(spec)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, source, lines, node_id, ("nodes", index))
        return None
    for field, message in node.problems(settings):
        line = lines.nearest("nodes", index, field)
        problems.append(Problem(source, message, node.id, field, line))
    return node


def _settings_problems(
    raw: dict[str, Any], source: str, settings: Settings, lines: _LineIndex
) -> list[Problem]:
    """The scenario settings and audience, checked against the project's; each one that
    does not parse is already reported by the schema."""
    problems = []
    try:
        scenario_settings = ScenarioSettings.model_validate(raw.get("settings"))
    except ValidationError:
        scenario_settings = None
    audience = raw.get("audience")
    name = raw.get("name") if isinstance(raw.get("name"), str) else ""

    def check(ok: bool, field: str, message: str) -> None:
        if not ok:
            line = lines.at("settings", field) or lines.at(field)
            problems.append(Problem(source, message, None, field, line))

    if isinstance(audience, str):
        error = expression_error(audience)
        check(error is None, "audience", f"audience is not a valid expression: {error}")
    if scenario_settings is None:
        return problems
    check(
        scenario_settings.consent_category in settings.consent_categories,
        "consent_category",
        f"consent category '{scenario_settings.consent_category}' is not defined in the "
        f"project settings ({', '.join(settings.consent_categories)})",
    )
    check(
        scenario_settings.frequency_policy is None
        or scenario_settings.frequency_policy in settings.frequency_policies,
        "frequency_policy",
        f"frequency policy '{scenario_settings.frequency_policy}' is not defined in the "
        "project settings",
    )
    check(
        scenario_settings.sender is None or settings.sender(scenario_settings.sender) is not None,
        "sender",
        f"sender '{scenario_settings.sender}' is not a predefined sender",
    )
    links = scenario_settings.links
    rules = link_rules(settings, links, name, "sms")
    if links.identity not in (None, "disabled") and (rules is None or not rules.shorten):
        problems.append(
            Problem(
                source,
                "identity transfer needs the link shortener: set links.shorten: true here "
                "or in the project settings",
                None,
                "links.identity",
                lines.at("settings", "links", "identity"),
            )
        )
    return problems


def _routes(
    edges: list[tuple[int, Edge]],
    nodes: dict[str, NodeConfig],
    invalid: set[str],
    source: str,
    lines: _LineIndex,
) -> tuple[dict[tuple[str, str], str], list[Problem]]:
    routes: dict[tuple[str, str], str] = {}
    problems = []
    for index, edge in edges:
        line = lines.at("edges", index)
        for end, field in ((edge.source, "from"), (edge.target, "to")):
            if end not in nodes and end not in invalid:
                problems.append(
                    Problem(
                        source, f"edge {field} unknown node '{end}'", end, f"edges.{index}", line
                    )
                )
        if edge.source not in nodes or edge.target not in nodes:
            continue
        outputs = type(nodes[edge.source]).outputs
        if edge.when not in outputs:
            problems.append(
                Problem(
                    source,
                    f"branch '{edge.when}' is not one of {', '.join(outputs)}",
                    edge.source,
                    f"edges.{index}.when",
                    line,
                )
            )
        elif (edge.source, edge.when) in routes:
            problems.append(
                Problem(
                    source,
                    f"branch '{edge.when}' already has an edge",
                    edge.source,
                    f"edges.{index}",
                    line,
                )
            )
        else:
            routes[(edge.source, edge.when)] = edge.target
    return routes, problems


def _order(
    nodes: dict[str, NodeConfig],
    routes: dict[tuple[str, str], str],
    source: str,
    lines: _LineIndex,
    node_index: dict[str, int],
) -> tuple[tuple[str, ...], list[Problem]]:
    def where(node_id: str, field: str = "id") -> int | None:
        return lines.at("nodes", node_index[node_id], field)

    triggers = [node_id for node_id, node in nodes.items() if isinstance(node, TriggerNode)]
    if len(triggers) != 1:
        message = "no trigger node" if not triggers else f"several triggers: {', '.join(triggers)}"
        return (), [Problem(source, f"a scenario needs exactly one trigger: {message}")]
    trigger = triggers[0]
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for (node_id, _output), target in routes.items():
        successors[node_id].append(target)
        indegree[target] += 1
    problems = []
    if indegree[trigger]:
        problems.append(Problem(source, "the trigger cannot have incoming edges", trigger, None))

    # Kahn's algorithm: what is left over sits on a cycle.
    ready = [node_id for node_id in nodes if indegree[node_id] == 0]
    remaining = dict(indegree)
    order = []
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for target in successors[node_id]:
            remaining[target] -= 1
            if remaining[target] == 0:
                ready.append(target)
    cyclic = [node_id for node_id in nodes if node_id not in order]
    if cyclic:
        problems.append(
            Problem(
                source,
                f"the graph is not acyclic: a cycle runs through {', '.join(cyclic)}",
                cyclic[0],
                None,
                where(cyclic[0]),
            )
        )
        return (), problems

    reachable = {trigger}
    for node_id in order:
        if node_id in reachable:
            reachable.update(successors[node_id])
    for node_id in nodes:
        if node_id not in reachable:
            problems.append(
                Problem(source, "unreachable from the trigger", node_id, None, where(node_id))
            )
    # The trigger first, then the rest in topological order.
    order.remove(trigger)
    return (trigger, *order), problems


def _pydantic_problems(
    exc: ValidationError,
    source: str,
    lines: _LineIndex,
    node_id: str | None = None,
    prefix: tuple[str | int, ...] = (),
) -> list[Problem]:
    """One Problem per pydantic error; `prefix` is where the validated mapping sits."""
    problems = []
    for item in exc.errors():
        loc = [str(part) for part in item["loc"]]
        problems.append(
            Problem(
                source,
                item["msg"].removeprefix("Value error, "),
                node_id,
                ".".join(loc) or None,
                lines.nearest(*prefix, *loc),
            )
        )
    return problems


class _LineIndex:
    """Finds the YAML line of a key path such as ("nodes", 2, "text"); None when absent."""

    def __init__(self, tree: yaml.Node | None):
        self.tree = tree

    def nearest(self, *path: str | int) -> int | None:
        """The line of `path`, or of its deepest part that exists."""
        for depth in range(len(path), 0, -1):
            if (line := self.at(*path[:depth])) is not None:
                return line
        return None

    def path_of(self, target: yaml.Node) -> tuple[str | int, ...]:
        """The key path of `target` in the tree, such as ("nodes", 2, "fallback")."""
        stack: list[tuple[yaml.Node | None, tuple[str | int, ...]]] = [(self.tree, ())]
        while stack:  # not recursive: a tree may be as deep as YAML let it be
            node, path = stack.pop()
            if node is target:
                return path
            if isinstance(node, yaml.MappingNode):
                stack += [(value, (*path, key.value)) for key, value in node.value]
            elif isinstance(node, yaml.SequenceNode):
                stack += [(value, (*path, i)) for i, value in enumerate(node.value)]
        return ()

    def at(self, *path: str | int) -> int | None:
        node = self.tree
        line = None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = [v for k, v in node.value if k.value == str(part)]
                if not match:
                    return None
                node = match[0]
            elif isinstance(node, yaml.SequenceNode):
                try:
                    node = node.value[int(part)]
                except (ValueError, IndexError):
                    return None
            else:
                return None
            line = node.start_mark.line + 1
        return line
