"""Configuration files as data: bounded, alias-free YAML and strict schemas with errors naming file and field.

Cards and presets arrive from pull requests and users' disks, so reading one is bounded: at most
MAX_BYTES, UTF-8, no anchors or aliases (an alias bomb expands a small file into gigabytes), no
duplicate keys (the second would silently win), at most MAX_DEPTH levels of nesting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, ValidationError, model_serializer

from robustbench_snn.errors import UserError

MAX_BYTES = 1 << 20
MAX_DEPTH = 32


class Strict(BaseModel):
    """A schema that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class OmittingUnset(BaseModel):
    """A schema whose fields named in ``omitted_while_none`` are left out of its dump while None, so a
    document written before such a field existed is written again exactly as it was."""

    omitted_while_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict:
        dumped = handler(self)
        for name in self.omitted_while_none:
            if dumped.get(name) is None:
                dumped.pop(name, None)
        return dumped


def describe(error: ValidationError, whole: str = "(document)") -> str:
    """One line per problem: the field's dotted path and pydantic's message."""
    return "\n".join(
        f"  field '{'.'.join(str(part) for part in problem['loc']) or whole}': {problem['msg'].removeprefix('Value error, ')}"
        for problem in error.errors()
    )


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, duplicate keys or deep nesting."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a name, not a {type(key).__name__} ({key!r})", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(path: str | os.PathLike, error: type[UserError] = UserError) -> object:
    """The data of a YAML file, or ``error`` naming the file and what is wrong with it."""
    path = Path(path)
    try:
        if not path.is_file():
            raise error(f"{path}: not a file")
        if path.stat().st_size > MAX_BYTES:
            raise error(f"{path}: larger than {MAX_BYTES} bytes; a card or preset is a small file")
        text = path.read_bytes().decode("utf-8")
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror}") from None
    except UnicodeDecodeError as problem:
        raise error(f"{path}: not UTF-8 text (byte {problem.start})") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise error(f"{path}: nested too deeply") from None
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None
