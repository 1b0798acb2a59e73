"""Sphinx extension (``_config.yml``: ``extra_extensions``): exercises are numbered per page, 1, 2, 3, ...

sphinx-exercise numbers exercises with Sphinx's figure numbering, which counts across the whole book unless the
table of contents is ``numbered`` (then numbers read "5.1", "5.2" and every heading gets a section number): the
rendered book showed "Exercise 17" where the chapter's text and its checkers' docstrings say "Exercise 1". Sphinx
has no setting for numbers that restart on each page (``numfig_secnum_depth`` only divides numbered sections), and
sphinx-exercise's ``:nonumber:`` drops the number altogether. So, after Sphinx has assigned its numbers, this
renumbers each page's exercises in the order they had (the order they appear on the page): the title, the
"Solution to Exercise N" heading and every ``{numref}``/``{ref}`` read the same table, so they all agree.
"""

from __future__ import annotations

PER_PAGE = ("exercise",)
"""The enumerable node types numbered per page (figures, tables and code listings keep Sphinx's numbering)."""


def per_page_numbers(numbers: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """One page's ``{id: number}`` of one node type, renumbered 1, 2, ... in the order of the given numbers.

    A number's leading parts (a numbered section, under a ``numbered`` table of contents) are kept; the count
    restarts within each of them.
    """
    renumbered, counters = {}, {}
    for node_id, number in sorted(numbers.items(), key=lambda item: item[1]):
        prefix = tuple(number[:-1])
        counters[prefix] = counters.get(prefix, 0) + 1
        renumbered[node_id] = (*prefix, counters[prefix])
    return renumbered


def _renumber(app, env) -> list[str]:
    changed = []
    for docname, by_type in env.toc_fignumbers.items():
        for figtype in PER_PAGE:
            if figtype in by_type:
                new = per_page_numbers(by_type[figtype])
                if new != by_type[figtype]:
                    by_type[figtype] = new
                    changed.append(docname)
    return sorted(set(changed))  # pages whose numbers moved are written again


def setup(app):
    # after Sphinx's toctree collector (priority 500) has assigned the book-wide numbers
    app.connect("env-get-updated", _renumber, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
