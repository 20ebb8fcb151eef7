"""README.md and docs/*.md: short, navigable, no dead links, and no --flag the code does not define.

Fast: reads files and parses Python sources with ast, starts no process.
"""
from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from pathlib import Path

import pytest

from helpers import PROJECT_ROOT

README = PROJECT_ROOT / 'README.md'
DOCS = sorted((PROJECT_ROOT / 'docs').glob('*.md'))
PAGES = [README, *DOCS]
MAX_README_LINES = 300

# Flags of outside tools that the pages show in their commands; each with the tool it belongs to.
OUTSIDE_FLAGS = {
    '--help': 'argparse (every script has it)',
    '--standalone': 'torchrun',
    '--nproc_per_node': 'torchrun',
    '--nnodes': 'torchrun',
    '--rdzv-backend': 'torchrun',
    '--rdzv-id': 'torchrun',
    '--rdzv-endpoint': 'torchrun',
    '--nodes': 'sbatch (#SBATCH)',
    '--ntasks-per-node': 'sbatch (#SBATCH)',
    '--gpus-per-node': 'sbatch (#SBATCH)',
    '--cpus-per-task': 'sbatch (#SBATCH)',
}

FENCE = re.compile(r'^(```|~~~).*?^\1[ \t]*$', re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r'(`+)(.+?)\1', re.DOTALL)
FLAG = re.compile(r'(?<![\w-])--[A-Za-z][\w-]*')
LINK = re.compile(r'!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
HEADING = re.compile(r'^(#{1,6})\s+(.+?)\s*#*\s*$')
IMAGE = re.compile(r'!\[[^\]]*\]\(([^)\s]+\.png)\)')


def code_text(markdown: str) -> list[str]:
    """The contents of every fenced code block and every inline code span."""
    blocks = [match.group(0) for match in FENCE.finditer(markdown)]
    prose = FENCE.sub('', markdown)
    return blocks + [match.group(2) for match in CODE_SPAN.finditer(prose)]


def flags_in_code(markdown: str) -> set[str]:
    """Every --flag that appears inside code (blocks or spans), not in prose."""
    return {flag for text in code_text(markdown) for flag in FLAG.findall(text)}


def defined_flags(sources: list[Path]) -> set[str]:
    """Every --flag an add_argument(...) call in these files defines (with the --no- form of a
    BooleanOptionalAction)."""
    flags: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding='utf-8'), filename=str(source))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == 'add_argument'):
                continue
            names = [arg.value for arg in node.args if isinstance(arg, ast.Constant)
                     and isinstance(arg.value, str) and arg.value.startswith('--')]
            flags.update(names)
            action = ' '.join(ast.unparse(k.value) for k in node.keywords if k.arg == 'action')
            if action.endswith('BooleanOptionalAction'):
                flags.update('--no-' + name[2:] for name in names)
    return flags


@functools.cache
def project_flags() -> frozenset[str]:
    """defined_flags of project_sources, parsed once per session."""
    return frozenset(defined_flags(project_sources()))


def project_sources() -> list[Path]:
    """The project's Python: top-level modules, fmd/, bench/ and docs/ (make_figures.py)."""
    return sorted([*PROJECT_ROOT.glob('*.py'), *(PROJECT_ROOT / 'fmd').rglob('*.py'),
                   *(PROJECT_ROOT / 'bench').glob('*.py'), *(PROJECT_ROOT / 'docs').glob('*.py')])


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # a link keeps its text
    text = text.replace('`', '').strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(markdown: str) -> set[str]:
    """The anchors of every heading outside code blocks (duplicates get -1, -2, ... as on GitHub)."""
    seen: Counter[str] = Counter()
    found = set()
    for line in FENCE.sub('', markdown).splitlines():
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.add(base if not seen[base] else f'{base}-{seen[base]}')
            seen[base] += 1
    return found


def link_problems(page: Path, markdown: str) -> list[str]:
    """Relative links (outside code) whose file does not exist, or whose #anchor names no heading."""
    problems = []
    for target in LINK.findall(FENCE.sub('', CODE_SPAN.sub('', markdown))):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition('#')
        if not path_part:  # an anchor on this page
            if anchor not in anchors(markdown):
                problems.append(f'{page.name}: {target} (no such heading)')
            continue
        linked = (page.parent / path_part).resolve()
        if not linked.exists():
            problems.append(f'{page.name}: {target} (no such file)')
        elif anchor and linked.suffix == '.md' and anchor not in anchors(linked.read_text(encoding='utf-8')):
            problems.append(f'{page.name}: {target} (no such heading)')
    return problems


def table_of_contents(markdown: str) -> list[str]:
    """The #anchors of the list right under a '## Contents' heading."""
    lines = markdown.splitlines()
    heading = re.compile(r'^##\s+(Contents|Table of contents)\s*$')
    start = next(i for i, line in enumerate(lines) if heading.match(line))
    entries = []
    for line in lines[start + 1:]:
        if line.startswith('#'):
            break
        entries += re.findall(r'\]\((#[^)]+)\)', line)
    return entries


# --- the checks themselves ----------------------------------------------------------------------

def test_readme_is_short() -> None:
    lines = README.read_text(encoding='utf-8').count('\n')
    assert lines <= MAX_README_LINES, f'README.md has {lines} lines; keep it to {MAX_README_LINES}'


def test_readme_table_of_contents_points_at_existing_headings() -> None:
    markdown = README.read_text(encoding='utf-8')
    entries = table_of_contents(markdown)
    assert len(entries) >= 5
    missing = [entry for entry in entries if entry[1:] not in anchors(markdown)]
    assert not missing, f'table of contents entries without a heading: {missing}'
    level_two = [slug(m.group(2)) for line in FENCE.sub('', markdown).splitlines()
                 if (m := HEADING.match(line)) and len(m.group(1)) == 2 and m.group(2) != 'Contents']
    assert set(level_two) <= {entry[1:] for entry in entries}, 'a ## section is missing from the contents'


@pytest.mark.parametrize('page', PAGES, ids=lambda page: page.name)
def test_relative_links_point_at_existing_files(page: Path) -> None:
    assert not link_problems(page, page.read_text(encoding='utf-8'))


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = README.read_text(encoding='utf-8')
    unlinked = [page.name for page in DOCS if f'(docs/{page.name}' not in readme]
    assert not unlinked, f'docs pages the README does not link: {unlinked}'


def test_each_docs_figure_appears_exactly_once() -> None:
    shown = Counter((page.parent / target).resolve()
                    for page in PAGES for target in IMAGE.findall(page.read_text(encoding='utf-8')))
    figures = sorted((PROJECT_ROOT / 'docs').glob('*.png'))
    assert figures
    times = {figure.name: shown[figure.resolve()] for figure in figures}
    assert times == {figure.name: 1 for figure in figures}, 'each docs/*.png is shown once in README + docs'


@pytest.mark.parametrize('page', PAGES, ids=lambda page: page.name)
def test_every_flag_shown_in_code_is_defined_by_the_project(page: Path) -> None:
    defined = project_flags() | set(OUTSIDE_FLAGS)
    unknown = sorted(flags_in_code(page.read_text(encoding='utf-8')) - defined)
    assert not unknown, f'{page.name} shows flags no add_argument defines: {unknown}'


# --- the checkers can fail --------------------------------------------------------------------

def test_flag_collector_finds_known_flags_and_not_made_up_ones() -> None:
    defined = project_flags()
    assert {'--frames-per-video', '--checkpoint_path', '--data-root', '--stop-on-collapse'} <= defined
    assert '--no-pretrained' in defined  # the --no- form of a BooleanOptionalAction
    assert '--made-up-flag' not in defined and '--help' not in defined


def test_flags_are_taken_from_code_only() -> None:
    markdown = 'Run `x --alpha` and --beta in prose.\n\n```bash\nx --gamma-ray --delta_1\n```\n'
    assert flags_in_code(markdown) == {'--alpha', '--gamma-ray', '--delta_1'}


def test_link_and_anchor_checks_catch_dead_targets(tmp_path: Path) -> None:
    page = tmp_path / 'page.md'
    (tmp_path / 'other.md').write_text('# Other page\n## A `code` heading: (yes)\n')
    markdown = ('# Title\n[ok](other.md#a-code-heading-yes) [ok](#title) [web](https://example.org/x)\n'
                '[gone](missing.md) [bad anchor](other.md#nope) [self](#nowhere)\n'
                '`[not a link](nothing.md)`\n')
    assert link_problems(page, markdown) == ['page.md: missing.md (no such file)',
                                             'page.md: other.md#nope (no such heading)',
                                             'page.md: #nowhere (no such heading)']


def test_slug_matches_github_anchors() -> None:
    assert slug('Real data: cross-dataset (ciplab and demo fakes)') == \
        'real-data-cross-dataset-ciplab-and-demo-fakes'
    assert slug('The chain: run_me.sh') == 'the-chain-run_mesh'
    assert slug('Bonus: BonusNet, 164,276 parameters (0.97% of SimpleNet)') == \
        'bonus-bonusnet-164276-parameters-097-of-simplenet'
    assert anchors('# A\n## A\n```\n# not a heading\n```\n') == {'a', 'a-1'}
