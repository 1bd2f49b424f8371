"""Message templates and expressions, all compiled by one Jinja sandbox.

Customer data can never run code (SandboxedEnvironment), and a missing variable is an
error rather than an empty string (StrictUndefined). Audience filters and conditions are
Jinja expressions compiled by the same sandbox; nothing is ever turned into SQL. The
sandbox bounds what they build (`engine/sandbox.py`); `template_error` and
`expression_error` refuse at validate time what can be known then: syntax, names other
than `customer`, `event` and the globals, constant parts over the bounds.

`split_template` recognises templates that are literal text and `{{ expression }}`
outputs only. For those, Sinch can receive one body with `${p1}`, `${p2}` placeholders
and a value per recipient (DESIGN.md decision 3) instead of one request per text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.parser import Parser

from engine.errors import TemplateError
from engine.sandbox import BoundedSandbox, TooBig

# keep_trailing_newline: rendered text must equal the literal pieces `split_template` sees.
ENVIRONMENT = BoundedSandbox(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
# Every name a template or expression may use: the customer, the event, Jinja's globals.
NAMES = ("customer", "event", *sorted(ENVIRONMENT.globals))
# Sinch `${name}` placeholders: a literal containing this marker cannot be parameterized.
_PLACEHOLDER_MARK = "${"
_TOO_DEEP = "nests too deeply to be read"


def syntax_error(source: str) -> str | None:
    """None when `source` parses as a template, else Jinja's message with its line."""
    try:
        ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except RecursionError:
        return _TOO_DEEP
    return None


def template_error(source: str) -> str | None:
    """None when `source` is a template that can run, else what is wrong: its syntax, a
    name other than `NAMES`, or a constant part building a value over the sandbox's
    limits (`engine/sandbox.py`)."""
    try:
        tree = ENVIRONMENT.parse(source)
        ENVIRONMENT.compile(tree)
    except TemplateSyntaxError as exc:
        return f"template syntax error at line {exc.lineno}: {exc.message}"
    except RecursionError:
        return f"the template {_TOO_DEEP}"
    return _tree_error(tree)


def expression_error(source: str) -> str | None:
    """None when `source` is an expression that can run, else what is wrong: its syntax,
    a name other than `NAMES`, or a constant part over the sandbox's limits."""
    try:
        ENVIRONMENT.compile_expression(source)
        parser = Parser(ENVIRONMENT, source, state="variable")
        tree = nodes.Template([nodes.Output([parser.parse_expression()])])
        tree.set_environment(ENVIRONMENT)
    except TemplateSyntaxError as exc:
        return exc.message or str(exc)
    except RecursionError:
        return f"the expression {_TOO_DEEP}"
    return _tree_error(tree)


def _tree_error(tree: nodes.Template) -> str | None:
    unknown = sorted(meta.find_undeclared_variables(tree) - set(NAMES))
    if unknown:
        names = ", ".join(f"'{name}'" for name in unknown)
        return f"unknown name {names}: only {', '.join(NAMES)} exist"
    return _constant_error(tree)


def _constant_error(tree: nodes.Template) -> str | None:
    """What a part of `tree` that uses no name would build over the limits: each such part
    is evaluated in the bounded sandbox (Jinja's own folding leaves the bounded operators
    to run time), so `'a' * 10**9` is refused when it is validated."""
    parts = [
        node
        for node in tree.find_all(nodes.Expr)
        if not isinstance(node, nodes.Const | nodes.TemplateData | nodes.Name)
        and node.find(nodes.Name) is None
    ]
    for node in parts:
        try:
            body = [nodes.Assign(nodes.Name("result", "store"), node, lineno=1)]
            template = ENVIRONMENT.from_string(nodes.Template(body, lineno=1))
            TemplateExpression(template, undefined_to_none=False)()
        except TooBig as exc:
            return str(exc)
        except Exception:  # `1 / 0` and the like: as at run time, the journey fails
            continue
    return None


@lru_cache(maxsize=512)
def compile_template(source: str):
    return ENVIRONMENT.from_string(source)


@lru_cache(maxsize=512)
def compile_expression(source: str) -> Callable[..., Any]:
    return ENVIRONMENT.compile_expression(source, undefined_to_none=False)


def render(source: str, context: dict[str, Any]) -> str:
    """Render one template for one customer; any failure is a TemplateError."""
    try:
        return compile_template(source).render(context)
    except JinjaTemplateError as exc:
        raise TemplateError(f"template error: {exc}") from exc
    except Exception as exc:  # a filter or attribute raising on customer data
        raise TemplateError(f"template error: {type(exc).__name__}: {exc}") from exc


def evaluate(source: str, context: dict[str, Any]) -> Any:
    """Evaluate one expression for one customer; any failure is a TemplateError."""
    try:
        result = compile_expression(source)(**context)
        if isinstance(result, Undefined):
            # An expression yields Undefined instead of raising; make it the clear error.
            result._fail_with_undefined_error()
        return result
    except JinjaTemplateError as exc:
        raise TemplateError(f"expression error in '{source}': {exc}") from exc
    except Exception as exc:
        raise TemplateError(f"expression error in '{source}': {type(exc).__name__}: {exc}") from exc


# Batch rendering: one Jinja render for a whole batch instead of one per customer, which is
# most of the cost of personalising a text. Each customer's output ends with a separator
# that no sane text contains; whenever the result cannot be split back exactly (a value
# containing it, one customer's data failing), the batch is rendered one by one instead.
_RECORD = "\x1e"
_UNIT = "\x1f"


@lru_cache(maxsize=512)
def _batch_template(source: str):
    if "loop" in source or _RECORD in source:
        return None  # the template's own `loop` would see the batch loop
    body = source
    if "{%" in source:
        # A loop can print without end: each customer's text is captured by a block, which
        # the sandbox bounds as it bounds one customer's whole output (a batch's is far
        # longer). Without statements a text is a fixed number of bounded pieces.
        body = "{% set _text %}" + source + "{% endset %}{{ _text }}"
    wrapped = "{% for customer, event in _pairs %}" + body + _RECORD + "{% endfor %}"
    try:
        return ENVIRONMENT.from_string(wrapped)
    except TemplateSyntaxError:
        return None


def render_many(source: str, contexts: list[dict[str, Any]]) -> list[str | TemplateError]:
    """Render one template for many customers; a customer whose render fails gets the
    TemplateError in its place, the others their text."""
    template = _batch_template(source)
    if template is not None and contexts:
        try:
            pairs = [(c["customer"], c["event"]) for c in contexts]
            output = "".join(template.generate(_pairs=pairs))
        except Exception:  # someone's data fails: find out who, one by one
            output = None
        if output is not None:
            pieces = output.split(_RECORD)
            if len(pieces) == len(contexts) + 1 and pieces[-1] == "":
                return pieces[:-1]
    results: list[str | TemplateError] = []
    for context in contexts:
        try:
            results.append(render(source, context))
        except TemplateError as exc:
            results.append(exc)
    return results


@dataclass(frozen=True)
class SplitTemplate:
    """A template made only of literal text and `{{ expression }}` outputs.

    `literals` has one more element than `expressions`: text = l0 + v1 + l1 + v2 + l2 ...
    """

    literals: tuple[str, ...]
    expressions: tuple[str, ...]

    def values(self, context: dict[str, Any]) -> tuple[str, ...]:
        """Each expression's rendered value for one customer."""
        result = self.values_many([context])[0]
        if isinstance(result, TemplateError):
            raise result
        return result

    def values_many(self, contexts: list[dict[str, Any]]) -> list[tuple[str, ...] | TemplateError]:
        """Each customer's expression values, or the TemplateError that customer got."""
        source = _UNIT.join("{{ " + expr + " }}" for expr in self.expressions)
        results: list[tuple[str, ...] | TemplateError] = []
        for rendered in render_many(source, contexts):
            if isinstance(rendered, TemplateError):
                results.append(rendered)
                continue
            values = tuple(rendered.split(_UNIT)) if self.expressions else ()
            if len(values) != len(self.expressions):
                results.append(TemplateError("a value contains a control character (0x1f)"))
            else:
                results.append(values)
        return results

    def join(self, values: tuple[str, ...]) -> str:
        parts = [self.literals[0]]
        for value, literal in zip(values, self.literals[1:], strict=True):
            parts.append(value)
            parts.append(literal)
        return "".join(parts)

    def placeholder_body(self, names: tuple[str, ...]) -> str:
        """The body with `${name}` where each expression stood."""
        return self.join(tuple("${" + name + "}" for name in names))


@lru_cache(maxsize=512)
def split_template(source: str) -> SplitTemplate | None:
    """Split a literal-and-expressions template, or None when it has anything else."""
    if syntax_error(source) is not None or "{{-" in source or "-}}" in source:
        return None  # whitespace control changes the literals around a block
    literals: list[str] = [""]
    expressions: list[str] = []
    block: list[str] | None = None
    for _line, token, value in ENVIRONMENT.lex(source):
        if token in ("block_begin", "raw_begin", "comment_begin", "linestatement_begin"):
            return None  # {% if %}, {% for %}, {% set %}: the text is not a fixed shape
        if token == "variable_begin":
            block = []
        elif token == "variable_end":
            expressions.append("".join(block or []).strip())
            literals.append("")
            block = None
        elif block is not None:
            block.append(value)
        elif token == "data":
            literals[-1] += value
    if any(_PLACEHOLDER_MARK in literal for literal in literals):
        return None
    return SplitTemplate(tuple(literals), tuple(expressions))
