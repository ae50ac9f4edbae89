"""Read a scenario file, apply command-line overrides, validate, and report errors in one line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ScenarioError
from .schema import Scenario


def _yaml_value(text: str) -> Any:
    """`--set` values are YAML scalars, so `--set fleet.meters=5000` gives an int, `x=true` a bool."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_override(raw: dict[str, Any], assignment: str, source: str = "--set") -> None:
    """Set a dotted key (`fleet.meters=5000`) in the raw mapping, creating sections as needed."""
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ScenarioError(source, assignment, "expected KEY=VALUE with a dotted key, e.g. fleet.meters=5000")
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ScenarioError(source, ".".join(parts[: i + 1]), "is a value, not a section")
        node = child
    node[parts[-1]] = _yaml_value(value)


def _format_error(err: Mapping[str, Any]) -> tuple[str, str]:
    key = ".".join(str(p) for p in err.get("loc", ()) if p != "[key]")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") not in ("missing", "extra_forbidden") and "input" in err:
        value = err["input"]
        shown = repr(value) if isinstance(value, str | int | float | bool | None) else str(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{msg} (got {shown})"
    return key, msg


def scenario_from_mapping(raw: Any, source: str, overrides: list[str] | None = None) -> Scenario:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(source, "", "the file must be a YAML mapping of sections (fleet:, clock:, ...)")
    for assignment in overrides or ():
        apply_override(raw, assignment)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        key, msg = _format_error(exc.errors()[0])
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ScenarioError(source, key, msg) from None


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Load and validate a scenario; every failure is a ScenarioError naming the file and key."""
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(source, "", f"not valid YAML: {where}{problem}") from None
    return scenario_from_mapping(raw, source, overrides)
