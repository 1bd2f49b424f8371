"""The Jinja sandbox that templates and expressions run in, bounded in what they may build.

Jinja's SandboxedEnvironment keeps templates away from Python's internals but lets them
build values of any size: `'a' * 10**9` or `[1] * 10**9` ask for gigabytes, at run time
and, since Jinja folds constant expressions while it compiles, at validate time too. Here
an operation that can grow a value is checked *before* it builds it, from the size its
result would have, and what a call or filter returns is checked after:

- `*` (repetition, and products of integers), `+` (concatenation), `**`, `%` formatting;
- string methods and filters whose result grows with an argument (`center`, `ljust`,
  `indent`, `batch`, ...) or with a product (`replace`, `join`, `expandtabs`, `wordwrap`,
  `format`);
- `~`, `{% set %}` blocks, macros and the rendered output (`concat`).

The limits: a string, list, tuple or dict of at most `MAX_SIZE` elements (a string's
characters; a container's items plus the elements of what it holds, as printing it prints
them all), an integer of at most `MAX_INT_BITS` bits. Going over raises `TooBig`, a Jinja
SecurityError naming what would have been built.
"""

from __future__ import annotations

import inspect
import math
import re
import string
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, NoReturn

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

# An SMS has at most 1,600 characters: this leaves room for any real template's work.
MAX_SIZE = 100_000
MAX_INT_BITS = 100_000  # about 30,000 decimal digits
BOUNDED_BINOPS = frozenset({"*", "**", "+", "%"})


class TooBig(SecurityError):
    """A template or expression would build a value over the limits."""


def _refuse(what: str, value_type: type, size: int) -> NoReturn:
    if value_type is int:
        raise TooBig(
            f"{what} would build an integer of {size:,} bits; the limit is {MAX_INT_BITS:,}"
        )
    unit = "characters" if value_type is str else "elements"
    raise TooBig(
        f"{what} would build a {value_type.__name__} of {size:,} {unit}; the limit is {MAX_SIZE:,}"
    )


def size_of(value: Any) -> int:
    """A string's characters; a list's, tuple's or dict's items plus the size of each
    (keys too). Counting stops soon after `MAX_SIZE`, so a huge value costs little."""
    total = 0
    stack = [value]
    while stack and total <= MAX_SIZE:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
    return total


def checked(value: Any, what: str = "the result") -> Any:
    """`value` itself, or TooBig when it is over the limits."""
    if isinstance(value, str):  # first: most values are
        if len(value) > MAX_SIZE:
            _refuse(what, str, len(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            _refuse(what, int, value.bit_length())
    elif isinstance(value, list | tuple | dict) and (size := size_of(value)) > MAX_SIZE:
        _refuse(what, type(value), size)
    return value


def binop_size(operator: str, left: Any, right: Any) -> tuple[type, int] | None:
    """The type and size (elements, or bits for an integer) the result of `left operator
    right` would have, when it can grow; None when it cannot."""
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                return type(sequence), size_of(sequence) * max(count, 0)
        if isinstance(left, int) and isinstance(right, int):
            return int, left.bit_length() + right.bit_length()
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            return int, math.ceil(right * math.log2(abs(left)))
    elif operator == "+":
        if isinstance(left, str | list | tuple) and type(left) is type(right):
            return type(left), size_of(left) + size_of(right)
    elif operator == "%" and isinstance(left, str):
        return str, printf_size(left, right)
    return None


def bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """`left operator right`, refused before it is built when the result is over the limits."""
    if (found := binop_size(operator, left, right)) is not None:
        value_type, size = found
        if size > (MAX_INT_BITS if value_type is int else MAX_SIZE):
            _refuse(f"'{operator}'", value_type, size)
    return SandboxedEnvironment.default_binop_table[operator](left, right)


# A printf conversion: optional mapping key, flags, width, precision, length, type.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")


def printf_size(template: str, values: Any) -> int:
    """At most how many characters `template % values` has: the template, every width and
    precision (`*` ones taken from `values`), and the values themselves."""
    args = list(values) if isinstance(values, tuple) else [values]
    total = len(template) + (size_of(values) if isinstance(values, dict) else 0)
    position = 0
    for width, precision, conversion in _PRINTF.findall(template):
        if conversion == "%":
            continue
        for part in (width, precision):
            if part == "*":
                star = args[position] if position < len(args) else 0
                total += star if isinstance(star, int) else 0
                position += 1
            elif part:
                total += int(part)
        if position < len(args) and not isinstance(values, dict):
            total += size_of(args[position])
        position += 1
    return total


def format_size(template: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """At most how many characters `template.format(*args, **kwargs)` has (every number
    in a format spec counted as a width), or None when the template does not parse."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return None
    total = len(template) + size_of(list(args)) + size_of(kwargs)
    for _literal, _field, spec, _conversion in fields:
        if spec:
            total += sum(int(number) for number in re.findall(r"\d+", spec))
            if "{" in spec:  # a nested width comes from the arguments
                total += sum(v for v in (*args, *kwargs.values()) if isinstance(v, int))
    return total


# Results that grow with an argument or a product, from the receiver (a string method's
# string, a filter's value) and the call's arguments bound to their names.
Estimate = Callable[[Any, dict[str, Any]], int | None]


def _padded(value: Any, arguments: dict[str, Any]) -> int | None:
    width = arguments.get("width")
    return max(len(str(value)), width) if isinstance(width, int) else None


def _replaced(value: Any, arguments: dict[str, Any]) -> int | None:
    old, new, count = arguments["old"], arguments["new"], arguments.get("count")
    if not (isinstance(value, str) and isinstance(old, str) and isinstance(new, str)):
        return None
    found = value.count(old) if old else len(value) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(value) + found * max(len(new) - len(old), 0)


def _expanded(value: Any, arguments: dict[str, Any]) -> int | None:
    tabsize = arguments.get("tabsize", 8)
    return len(value) + value.count("\t") * max(tabsize, 0) if isinstance(tabsize, int) else None


def _joined(separator: Any, items: Any) -> int | None:
    if isinstance(items, str):  # joins its characters
        size = len(items)
    elif isinstance(items, list | tuple):
        size = size_of(list(items))
    else:
        return None  # an iterator: only its result can be checked
    return size + len(str(separator)) * max(len(items) - 1, 0)


def _indented(value: Any, arguments: dict[str, Any]) -> int | None:
    width = arguments.get("width", 4)
    step = width if isinstance(width, int) else len(str(width))
    text = str(value)
    return len(text) + (text.count("\n") + 1) * max(step, 0)


def _wrapped(value: Any, arguments: dict[str, Any]) -> int | None:
    text = str(value)
    wrap = arguments.get("wrapstring") or "\n"
    # Every line but the last ends with the wrap string; a line has at least 1 character.
    return len(text) + len(text) * len(str(wrap))


def _filled(count_name: str) -> Estimate:
    def estimate(value: Any, arguments: dict[str, Any]) -> int | None:
        count = arguments.get(count_name)
        return count if isinstance(count, int) else None

    return estimate


STRING_METHODS: dict[str, Estimate] = {
    "center": _padded,
    "ljust": _padded,
    "rjust": _padded,
    "zfill": _padded,
    "replace": _replaced,
    "expandtabs": _expanded,
    "join": lambda separator, arguments: _joined(separator, arguments.get("iterable")),
}
_STRING_SIGNATURES = {name: inspect.signature(getattr(str, name)) for name in STRING_METHODS}
FILTERS: dict[str, Estimate] = {
    "center": _padded,
    "replace": _replaced,
    "indent": _indented,
    "wordwrap": _wrapped,
    "join": lambda items, arguments: _joined(arguments.get("d", ""), items),
    "format": lambda value, arguments: printf_size(
        str(value), arguments.get("kwargs") or tuple(arguments.get("args", ()))
    ),
    "batch": _filled("linecount"),
    "slice": _filled("slices"),
}


def _estimate(
    what: str, estimate: Estimate, signature: inspect.Signature, args: tuple, kwargs: dict
) -> None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return  # the call itself will say what is wrong
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    receiver = arguments.pop(next(iter(signature.parameters)))
    size = estimate(receiver, arguments)
    if size is not None and size > MAX_SIZE:
        _refuse(what, str if isinstance(receiver, str) else list, size)


def _bounded_filter(name: str, function: Callable[..., Any], estimate: Estimate) -> Callable:
    # Filters marked pass_context/pass_environment/pass_eval_context get that first.
    skip = 1 if hasattr(function, "jinja_pass_arg") else 0
    signature = inspect.signature(function)
    signature = signature.replace(parameters=list(signature.parameters.values())[skip:])

    what = f"filter '{name}'"

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _estimate(what, estimate, signature, args[skip:], kwargs)
        return checked(function(*args, **kwargs), what)

    bounded.__dict__.update(function.__dict__)  # keeps the jinja_pass_arg mark
    bounded.__name__ = function.__name__
    return bounded


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `~` builds a string too: checked like an operator's result.
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(", \"'~'\")")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """A sandbox refusing to build values over `MAX_SIZE` / `MAX_INT_BITS`. Immutable:
    lists and dicts have no `append` or `update`, which would grow them out of sight of
    these checks (`{% set ns.items = ns.items + [x] %}` is checked like any `+`)."""

    intercepted_binops = BOUNDED_BINOPS
    code_generator_class = _CodeGenerator
    checked = staticmethod(checked)

    def __init__(self, **options: Any):
        super().__init__(**options)
        # lipsum's size is its argument, and placeholder text has no place in a message.
        del self.globals["lipsum"]
        for name, estimate in FILTERS.items():
            self.filters[name] = _bounded_filter(name, self.filters[name], estimate)

    @staticmethod
    def concat(pieces: Iterable[str]) -> str:
        """The rendered output, and what `{% set %}` blocks and macros capture: joined
        only while it stays within the limit, in characters and in pieces (a loop printing
        empty strings grows nothing but the list of them)."""
        kept: list[str] = []
        total = 0
        iterator = iter(pieces)
        while block := list(islice(iterator, 256)):  # counted a block at a time: fast
            total += sum(map(len, block))
            kept += block
            if total > MAX_SIZE or len(kept) > MAX_SIZE:
                _refuse("the output", str, total)
        return "".join(kept)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return bounded_binop(operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # The sandbox's `str.format` is a wrapper around the bound method.
        method = getattr(__obj, "__wrapped__", __obj)
        receiver = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(receiver, str):
            if name in ("format", "format_map"):
                values = kwargs if name == "format" else (args[0] if args else {})
                size = format_size(receiver, args if name == "format" else (), values)
                if size is not None and size > MAX_SIZE:
                    _refuse(f"'{name}'", str, size)
            elif name in STRING_METHODS:
                signature = _STRING_SIGNATURES[name]
                _estimate(f"'{name}'", STRING_METHODS[name], signature, (receiver, *args), kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return checked(result, f"'{name}'" if name else "the call")
