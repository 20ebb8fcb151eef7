"""Write report.md, report.pdf and summary.json into one folder, each file atomically (never half-written)."""
from __future__ import annotations

from pathlib import Path

from fmd.core.atomic_io import atomic_write, atomic_write_json
from fmd.reporting.build import build_document
from fmd.reporting.document import to_markdown
from fmd.reporting.front_matter import SUBTITLE, TITLE
from fmd.reporting.gather import gather
from fmd.reporting.pdf import to_pdf
from fmd.reporting.questions import QUESTIONS
from fmd.reporting.summary import summary_of


def write_report(out_dir: Path) -> Path:
    """Gather the run's files into out_dir/report.md, report.pdf and summary.json; returns report.md."""
    facts = gather()
    document = build_document(facts)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown_path, pdf_path = out_dir / 'report.md', out_dir / 'report.pdf'
    markdown = to_markdown(document, out_dir)
    atomic_write(markdown_path, lambda handle: handle.write(markdown.encode('utf-8')))
    layout = to_pdf(document, pdf_path, f'{TITLE}: {SUBTITLE}')
    summary = summary_of(facts)
    summary['missing'] = list(dict.fromkeys(facts.missing))
    summary['pdf'] = {'pages': layout.pop('pages'), 'anchors': layout}
    summary['questions'] = [q.label for q in QUESTIONS] + ['Bonus']
    atomic_write_json(summary, out_dir / 'summary.json')
    print(f'Wrote {markdown_path}, {pdf_path} ({summary["pdf"]["pages"]} pages) and '
          f'{out_dir / "summary.json"}: {len(QUESTIONS)} questions and the bonus, '
          f'{document.n_figures} figures, {document.n_tables} tables, '
          f'{len(summary["missing"])} missing inputs')
    return markdown_path
