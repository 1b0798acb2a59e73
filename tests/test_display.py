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


def test_missing_values_in_a_shown_frame_read_as_a_dash_with_a_note():
    import pandas as pd

    frame = pd.DataFrame({"seconds": [0.5, np.nan], "note": ["ran", "nan"]}, index=["small", "nan"])
    shown = display.frame_html(frame)
    assert "NaN" not in shown and "<td>nan</td>" not in shown
    assert shown.count(f"<td>{display.MISSING}</td>") == 2
    assert "<th>nan</th>" in shown, "labels are kept as they are"
    assert f"{display.MISSING} = {display.MISSING_NOTE}" in shown
    assert "llmtheory-table-note" not in display.frame_html(frame.dropna())


def test_a_frame_that_knows_why_a_value_is_missing_says_so():
    import pandas as pd

    frame = pd.DataFrame({"full": [1.0, np.nan]})
    frame.attrs["missing"] = "not run: above FULL_HAAR_LIMIT"
    assert "— = not run: above FULL_HAAR_LIMIT" in display.frame_html(frame.round(2))  # attrs survive round()


def test_a_styled_frame_keeps_its_format_and_shows_the_dash():
    import pandas as pd

    shown = display.styler_html(pd.DataFrame({"rate": [1e-3, np.nan]}).style.format("{:.2e}"))
    assert "1.00e-03" in shown and ">—</td>" in shown and "nan" not in shown.lower()


def test_a_styled_frame_gets_the_padded_dataframe_class_once():
    import pandas as pd

    frame = pd.DataFrame({"a": [0.714], "b": [1.0]})
    assert '<table class="dataframe" id="T_' in display.styler_html(frame.style.format("{:.3f}"))
    own = display.styler_html(frame.style.set_table_attributes('class="mine"'))
    assert 'class="mine"' in own and "dataframe" not in own  # a chapter's own class is kept


def test_a_number_never_wraps_at_its_exponent_but_text_may():
    import pandas as pd

    shown = display.styler_html(
        pd.DataFrame({"risk": [5.69e-2], "fate": ["dropped ×9 · kept ×2"]}).style.format({"risk": "{:.2e}"})
    )
    assert 'style="white-space:nowrap">5.69e-02</td>' in shown
    assert "dropped ×9" in shown and shown.count("white-space:nowrap") == 1


def test_the_table_formatters_are_registered_with_the_kernel():
    import pandas as pd
    from IPython.core.formatters import DisplayFormatter

    class Shell:
        display_formatter = DisplayFormatter()

    shell = Shell()
    assert display.install_table_formatters(shell)
    html = shell.display_formatter.formatters["text/html"]
    assert "<td>—</td>" in html(pd.DataFrame({"x": [np.nan]}))
    assert ">—</td>" in html(pd.DataFrame({"x": [np.nan]}).style.format(precision=2))
    shown = html(pd.Series([0.5, np.nan], index=["a", "b"], name="share"))
    assert "<th>share</th>" in shown and "<td>—</td>" in shown and "dtype" not in shown
    assert not display.install_table_formatters(object())


def test_a_chapter_can_give_the_reason_in_the_cell_that_shows_the_table():
    import pandas as pd

    frame = pd.DataFrame({"full": [1.0, np.nan]})
    assert "— = one class only" in display.frame_html(display.missing_because(frame, "one class only"))
    styled = display.missing_because(frame.style.format(precision=1), "not run")
    assert "— = not run" in display.styler_html(styled)
