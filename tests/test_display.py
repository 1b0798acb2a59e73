import numpy as np

from llmtheory import display


def test_show_source_is_the_functions_code_in_a_python_block():
    text = display.show_source(display.versions).data
    assert text.startswith("```python\ndef versions(") and text.endswith("```")


def test_versions_names_missing_packages():
    assert "no-such-package (not installed)" in display.versions("numpy", "no-such-package")


def test_glue_passes_numpy_scalars_as_python_numbers(monkeypatch):
    seen = {}
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.update({name: value}))
    display.glue("x", np.float64(0.25))
    display.glue("n", np.int64(3))
    assert type(seen["x"]) is float and type(seen["n"]) is int
