import matplotlib.pyplot as plt

from llmtheory.plotting import PALETTE, figure_path, set_log_ticks, show, use_book_style


def test_show_saves_a_png_and_closes_the_figure(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTHEORY_ROOT", str(tmp_path))
    monkeypatch.delenv("LLMTHEORY_FIGURES_DIR")  # the suite sends figures to a temporary folder; test the default
    use_book_style()
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    assert show(fig, slug="demo", name="line") is None
    path = figure_path("demo", "line")
    assert path == tmp_path / "_build" / "figures" / "demo" / "line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_book_style_uses_the_colour_blind_palette():
    use_book_style()
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"][:3] == list(PALETTE[:3])


def test_log_ticks_are_exactly_the_values():
    fig, ax = plt.subplots()
    ax.plot([1, 1000], [1, 2])
    set_log_ticks(ax, [1, 10, 1000, 10])
    assert list(ax.get_xticks()) == [1, 10, 1000] and ax.get_xscale() == "log"
    plt.close(fig)
