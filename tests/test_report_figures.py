"""Issue 26: the layout check every picture goes through (train/figures.py) sees what a reader sees wrong —
clipped text, tick labels running together, a legend over the data — and `save` repairs what it can."""

from __future__ import annotations

import numpy as np
import pytest


def test_a_clipped_title_is_named():
    import matplotlib.pyplot as plt

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, ax = plt.subplots(figsize=(3, 2), dpi=110)
    ax.set_title("int8 input levels used by normal data, per channel, which is a long title")
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("cut off" in p and "int8 input levels" in p for p in problems), problems


def test_overlapping_tick_labels_are_named():
    import matplotlib.pyplot as plt

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, ax = plt.subplots(figsize=(3, 2), dpi=110, layout="constrained")
    ax.set_xticks(range(12), [f"label {i}" for i in range(12)])
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("x tick label" in p and "overlaps x tick label" in p for p in problems), problems


def test_axis_labels_running_into_a_neighbour_are_named():
    import matplotlib.pyplot as plt

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, (a, b) = plt.subplots(2, 1, figsize=(4, 3), dpi=110)
    fig.subplots_adjust(hspace=0.05)
    a.set_xlabel("time in the recording (s)")
    b.set_title("test · run4.csv")
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("overlaps" in p for p in problems), problems


@pytest.mark.parametrize("what", ["line", "points", "bars"])
def test_a_legend_over_the_data_is_named(what):
    import matplotlib.pyplot as plt

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, ax = plt.subplots(figsize=(5, 3), dpi=110, layout="constrained")
    x = np.linspace(0, 1, 200)
    if what == "line":
        ax.plot(x, np.full_like(x, 0.5), label="flat")
    elif what == "points":
        ax.scatter(np.random.default_rng(0).random(500), np.random.default_rng(1).random(500), label="cloud")
    else:
        ax.bar(np.arange(10), np.full(10, 5.0), width=1.0, label="bars")
    ax.legend(loc="center")
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("legend covers" in p for p in problems), problems


def test_a_clean_figure_has_no_problem():
    import matplotlib.pyplot as plt

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, ax = figure(6, 3.5)
    x = np.linspace(0, 1, 100)
    ax.plot(x, x**2, label="x²")
    ax.set(title="Clean", xlabel="x", ylabel="y")
    ax.legend(loc="upper left")
    assert layout_problems(fig) == []
    plt.close(fig)


def test_save_repairs_and_records_its_verdict(tmp_path):
    """A log axis over less than a decade (many labelled minor ticks), a title too long for its axes and
    a legend on top of a line: `save` leaves none of it, and the PNG says so."""
    import matplotlib.pyplot as plt  # noqa: F401  (imported here: collection stays light)

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, (a, b) = figure(6, 3.2, ncols=2)
    x = np.geomspace(0.031, 0.09, 50)
    a.plot(x, np.full_like(x, 0.5), label="a flat line under the legend")
    a.set_xscale("log")
    a.legend(loc="center")
    a.set_title("int8 input levels used by normal data, per channel, in full")
    b.hist(np.random.default_rng(0).lognormal(-3, 0.2, 500), bins=np.geomspace(0.02, 0.1, 40))
    log_axis(b, "x")
    name = save(fig, tmp_path / "busy.png")
    assert name == "busy.png" and layout_verdict(tmp_path / "busy.png") == []


def test_a_picture_not_written_by_save_has_no_verdict(tmp_path):
    import matplotlib.pyplot as plt

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    fig, _ax = plt.subplots()
    fig.savefig(tmp_path / "plain.png")
    plt.close(fig)
    with pytest.raises(KeyError):
        layout_verdict(tmp_path / "plain.png")


def test_figures_wider_than_the_page_are_refused():
    import matplotlib.pyplot as plt  # noqa: F401  (imported here: collection stays light)

    from tinyae.train.figures import figure, layout_problems, layout_verdict, log_axis, save  # noqa: F401

    with pytest.raises(ValueError, match="wider than the page"):
        figure(12, 4)
