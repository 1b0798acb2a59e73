"""The book's Sphinx extension (``_config.yml``: ``extra_extensions``): it drops repeated <script> entries.

sphinx-thebe adds its configuration script (`const THEBE_JS_URL = ...`) once per read of the environment, and
Jupyter Book's build reads it more than once, so pages declared the constant twice: a JavaScript error on every
page (caught by `make check-book`). Keeping the first of identical scripts removes it.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # the same file and attributes (an inline script's file is None in one copy and "" in the other)
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
