"""Quote code in the report: a function's file, line, signature and docstring summary, read from the code."""
from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

from fmd.reporting.document import Document


def signature_text(function: Any, width: int = 82) -> str:
    """`name(params) -> return`, annotations as written in the source (from inspect.signature).

    Longer than `width` characters, the parameters are packed onto indented continuation lines.
    """
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
    one_line = f'{function.__name__}({", ".join(parts)}){returns}'
    if len(one_line) <= width:
        return one_line
    lines, current = [f'{function.__name__}('], ' ' * 8
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


def own_docstring(function: Any) -> str:
    """The function's own docstring (not one inherited from a base class); for __init__, the class's."""
    text = function.__doc__
    if not text and function.__name__ == '__init__':
        owner = inspect.getmodule(function)
        cls = getattr(owner, function.__qualname__.split('.')[0], None)
        text = getattr(cls, '__doc__', None)
    return inspect.cleandoc(text) if text else ''


def code_reference(doc: Document, *functions: Any) -> None:
    """Where each function lives, with its signature and the first paragraph of its docstring."""
    where, blocks = [], []
    for function in functions:
        source = Path(inspect.getsourcefile(function)).name
        line = inspect.getsourcelines(function)[1]
        where.append(f'`{function.__qualname__}` in `{source}` (line {line})')
        summary = ' '.join(own_docstring(function).split('\n\n')[0].split())
        block = f'# {source}, line {line}\ndef {signature_text(function)}:'
        if summary:
            block += '\n' + textwrap.fill(summary, width=84, initial_indent='    """',
                                          subsequent_indent='    ') + '"""'
        blocks.append(block)
    doc.para('Implemented by ' + ', '.join(where) + '.')
    doc.code('\n\n'.join(blocks))
