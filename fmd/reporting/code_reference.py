"""Quote code in the report: a function's file, line, signature and docstring summary, read from the code.

A function is given as the function itself, or for the assignment's scripts (which no module
imports) as `'script.py:name'`, read from the script's source.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmd.reporting.document import Document

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # where the assignment's scripts are


def signature_text(function: Any, width: int = 82) -> str:
    """`name(params) -> return`, annotations as written in the source (from inspect.signature).

    Longer than `width` characters, the parameters are packed onto indented continuation lines.
    """
    if isinstance(function, Quoted):
        return packed(function.name, function.parameters, function.returns, width)
    signature = inspect.signature(function)
    empty = inspect.Parameter.empty

    def annotation(value: Any) -> str:
        """An annotation as written: strings (postponed annotations) as they are, types formatted."""
        return value if isinstance(value, str) else inspect.formatannotation(value)

    parts, star_done = [], False
    for parameter in signature.parameters.values():
        text = parameter.name
        if parameter.kind is parameter.VAR_POSITIONAL:
            text, star_done = '*' + text, True
        elif parameter.kind is parameter.VAR_KEYWORD:
            text = '**' + text
        elif parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parts.append('*')
            star_done = True
        if parameter.annotation is not empty:
            text += ': ' + annotation(parameter.annotation)
        if parameter.default is not empty:
            text += (' = ' if parameter.annotation is not empty else '=') + repr(parameter.default)
        parts.append(text)
    returns = '' if signature.return_annotation is empty else \
        ' -> ' + annotation(signature.return_annotation)
    return packed(function.__name__, parts, returns, width)


def packed(name: str, parts: list[str], returns: str, width: int) -> str:
    """`name(parts) returns` on one line, or its parts packed onto continuation lines of `width`."""
    one_line = f'{name}({", ".join(parts)}){returns}'
    if len(one_line) <= width:
        return one_line
    lines, current = [f'{name}('], ' ' * 8
    for index, part in enumerate(parts):
        piece = part + (', ' if index < len(parts) - 1 else '')
        if len(current) + len(piece.rstrip()) > width and current.strip():
            lines.append(current.rstrip())
            current = ' ' * 8
        current += piece
    closing = ')' + returns
    if len(current) + len(closing) <= width:
        return '\n'.join([*lines, current + closing])
    return '\n'.join([*lines, current.rstrip(), closing])


@dataclass(frozen=True)
class Quoted:
    """A function as its source file has it: where it stands, its signature's parts, its docstring."""

    source: str  # the file name
    line: int
    qualname: str
    name: str
    parameters: list[str]
    returns: str
    docstring: str


def quoted_from_source(reference: str) -> Quoted:
    """`'script.py:name'` (or `'script.py:Class.name'`) read from the project's file, not imported."""
    file_name, qualname = reference.split(':')
    tree = ast.parse((PROJECT_ROOT / file_name).read_text(), filename=file_name)
    node: ast.AST = tree
    for name in qualname.split('.'):
        node = next(child for child in ast.iter_child_nodes(node)
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and child.name == name)
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)

    def text(argument: ast.arg, default: ast.expr | None, prefix: str = '') -> str:
        part = prefix + argument.arg
        if argument.annotation is not None:
            part += ': ' + ast.unparse(argument.annotation)
        if default is not None:
            part += (' = ' if argument.annotation is not None else '=') + ast.unparse(default)
        return part

    parts = [text(argument, default) for argument, default in zip(positional, defaults, strict=True)]
    if arguments.vararg is not None:
        parts.append(text(arguments.vararg, None, '*'))
    elif arguments.kwonlyargs:
        parts.append('*')
    parts += [text(argument, default)
              for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
    if arguments.kwarg is not None:
        parts.append(text(arguments.kwarg, None, '**'))
    returns = '' if node.returns is None else ' -> ' + ast.unparse(node.returns)
    line = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    return Quoted(file_name, line, qualname, node.name, parts, returns, ast.get_docstring(node) or '')


def own_docstring(function: Any) -> str:
    """The function's own docstring (not one inherited from a base class); for __init__, the class's."""
    if isinstance(function, Quoted):
        return function.docstring
    text = function.__doc__
    if not text and function.__name__ == '__init__':
        owner = inspect.getmodule(function)
        cls = getattr(owner, function.__qualname__.split('.')[0], None)
        text = getattr(cls, '__doc__', None)
    return inspect.cleandoc(text) if text else ''


def code_reference(doc: Document, *functions: Any) -> None:
    """Where each function lives, with its signature and the first paragraph of its docstring; a
    function, or `'script.py:name'` of an assignment script (quoted_from_source)."""
    where, blocks = [], []
    for function in functions:
        if isinstance(function, str):
            function = quoted_from_source(function)
            source, line, qualname = function.source, function.line, function.qualname
        else:
            source = Path(inspect.getsourcefile(function)).name
            line, qualname = inspect.getsourcelines(function)[1], function.__qualname__
        where.append(f'`{qualname}` in `{source}` (line {line})')
        summary = ' '.join(own_docstring(function).split('\n\n')[0].split())
        block = f'# {source}, line {line}\ndef {signature_text(function)}:'
        if summary:
            block += '\n' + textwrap.fill(summary, width=84, initial_indent='    """',
                                          subsequent_indent='    ') + '"""'
        blocks.append(block)
    doc.para('Implemented by ' + ', '.join(where) + '.')
    doc.code('\n\n'.join(blocks))
