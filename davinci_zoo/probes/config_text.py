"""Read a value from a config's text without running it.

mmengine checkpoints keep the training config as Python text (``meta['cfg']``). Reading it
with ``Config.fromstring`` would execute that text; :func:`config_value` instead parses it and
evaluates one top-level assignment that may only hold literals: numbers, strings, booleans,
None, lists, tuples, ``{...}`` and ``dict(key=...)``. Anything else is refused.
"""

from __future__ import annotations

import ast


class UnsafeConfigText(ValueError):
    """The config text holds something other than literals where it was read."""


def config_value(text: str, name: str):
    """The value assigned to the top-level ``name`` in config text (the last assignment wins);
    KeyError when nothing assigns it, UnsafeConfigText when its value is not a literal."""
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise UnsafeConfigText(f'the config text does not parse: {error.msg}') from None
    found = None
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in statement.targets
        ):
            found = statement.value
    if found is None:
        raise KeyError(name)
    return _literal(found, name)


def _literal(node: ast.AST, where: str):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, where)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(item, where) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(item, where) for item in node.elts)
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {
            _literal(key, where): _literal(value, where)
            for key, value in zip(node.keys, node.values)
        }
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == 'dict'
        and not node.args
        and all(keyword.arg is not None for keyword in node.keywords)
    ):
        return {keyword.arg: _literal(keyword.value, where) for keyword in node.keywords}
    raise UnsafeConfigText(
        f'{where}: line {getattr(node, "lineno", "?")} holds {type(node).__name__}, not a '
        'literal; only numbers, strings, lists, tuples and dicts are read from a config text'
    )
