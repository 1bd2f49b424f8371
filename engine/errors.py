"""Every error Scenarist raises on purpose, in one tree.

    ScenaristError
    ├── ConfigError       the project settings file is wrong (names the file and the key)
    ├── ScenarioError     a scenario file is wrong; carries every Problem found, each naming
    │                     the file, the node, the field and the YAML line where known
    ├── InputError        one input record (a customer row, an event, a phone number) is wrong,
    │                     or an input file as a whole (its encoding, its header)
    ├── TemplateError     a message template failed to render for one customer
    ├── ConcurrentUpdate  another process wrote the same rows first; the transaction was
    │                     rolled back whole, to be tried again on what is stored now
    └── ProviderError     a provider refused a request or could not be reached; `retryable`
                          says whether the same request may be sent again

Vendor errors (HTTP status codes, Sinch `{code, text}` bodies, timeouts) are translated
into ProviderError in `integrations/` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


class ScenaristError(Exception):
    """Base class for every error Scenarist raises on purpose."""


class ConfigError(ScenaristError):
    """The project settings are invalid."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file, located as precisely as it can be."""

    file: str
    message: str
    node: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        if self.node:
            where += f" node '{self.node}'"
        if self.field:
            where += f" field '{self.field}'"
        return f"{where}: {self.message}"


class ScenarioError(ScenaristError):
    """A scenario file failed validation; `problems` lists everything found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class InputError(ScenaristError):
    """One input record is invalid, or an input file as a whole."""


class TemplateError(ScenaristError):
    """A template could not be rendered for one customer."""


class ConcurrentUpdate(ScenaristError):
    """Another process wrote the rows a transaction meant to write; nothing was written."""


class ProviderError(ScenaristError):
    """A provider refused a request or could not be reached.

    `status_code` is the HTTP status (None when no answer came back), `code` the
    provider's own error code (Sinch `code`, Infobip `messageId`/`errorCode`), `text` its
    message, `retryable` whether sending the same request again may succeed.
    """

    def __init__(
        self,
        text: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ):
        super().__init__(text)
        self.text = text
        self.status_code = status_code
        self.code = code
        self.retryable = retryable
