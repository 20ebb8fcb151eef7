"""reporting: the report that answers the assignment's questions from one run (`python -m fmd.reporting`).

cli parses the command line; write gathers (gather, facts, model_facts), assembles (build: front_matter,
questions with their answers_* modules, helpers, chance, code_reference, prose, formatting) and writes
(document for Markdown, pdf with pdf_page, pdf_text, pdf_table and pdf_figure, summary for summary.json).
"""
