"""The attribution table's files: channel names of any text come out as written (CSV cells that a
spreadsheet would run as a formula get a leading apostrophe), and the chart draws them as text."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd

from marketing.attribution_report import shares_chart, write_report

CHANNELS = ["face=book [ads]", '"organic" social', "insta {gram} 📸", "بحث جوجل", "e-mail, list: 1; 2",
            "cost $x^$ 100%", "=SUM(1)", "+1 push", "-direct", "@mention", "a\\b it's\ttab"]


def _table() -> pd.DataFrame:
    share = 1 / len(CHANNELS)
    return pd.DataFrame({"channel": CHANNELS, "model": "linear", "conversions": 1.0, "value": 10.0,
                         "share": share})


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data):
        self.text.append(data)


def html_text(page: str) -> list[str]:
    """The text pieces of an HTML page, entities decoded: what a reader sees in each cell."""
    cells = _Cells()
    cells.feed(page)
    return cells.text


def test_csv_keeps_each_channel_and_neutralises_formula_starts(tmp_path):
    write_report(_table(), tmp_path / "credit.csv")
    read = pd.read_csv(tmp_path / "credit.csv", dtype={"channel": str}, keep_default_na=False)
    expected = ["'" + c if c[0] in "=+-@" else c for c in CHANNELS]
    assert read["channel"].tolist() == expected


def test_html_shows_each_channel_as_text(tmp_path):
    write_report(_table(), tmp_path / "credit.html", ["a note"])
    assert set(CHANNELS) <= set(html_text((tmp_path / "credit.html").read_text(encoding="utf-8")))


def test_the_chart_draws_dollar_signs_as_text():
    png = shares_chart(_table())  # "$x^$" is invalid mathtext: it would raise if parsed
    assert png.startswith(b"\x89PNG")


def test_every_model_has_its_own_colour_and_a_sentence_saying_what_it_does():
    from attribution.credit import MODEL_NAMES
    from marketing.attribution_report import explanation, model_colours

    colours = model_colours(list(MODEL_NAMES))
    assert len(set(colours)) == len(MODEL_NAMES) == 11  # first_touch and shapley no longer share one
    for model in MODEL_NAMES:
        sentence = explanation(model)
        assert sentence.endswith(".") and 40 < len(sentence) < 260, model
    assert "order 3" in explanation("markov_3") and "last 3 channel" in explanation("markov_3")


def test_the_attribution_page_fits_1400_pixels_explains_its_models_and_fetches_nothing(trained_shop, tmp_path):
    """The sample shop's page in headless Chromium at 1,400 × 900 with no network."""
    from attribution.credit import MODEL_NAMES
    from tests.browser import opened
    from tests.trained_shop import run_cli

    out = tmp_path / "attribution.html"
    run_cli("attribution", "--config", str(trained_shop.config), "--out", str(out),
            tracking_uri=trained_shop.tracking_uri)
    with opened(out.resolve().as_uri()) as (page, requested):
        page.wait_for_function("Array.from(document.images).every(img => img.complete)")
        width = page.evaluate("document.documentElement.scrollWidth")
        image = page.eval_on_selector("img", "e => [e.naturalWidth, e.getBoundingClientRect().right]")
        models = page.eval_on_selector_all("dl.models dt", "els => els.map(e => e.textContent)")
        text = page.locator("body").inner_text()
        page.screenshot(path=str(tmp_path / "attribution.png"), full_page=True)
    assert width <= 1400 and image[0] > 0 and image[1] <= 1400
    assert [u for u in requested if not u.startswith(("file:", "data:"))] == []
    assert models == list(MODEL_NAMES)
    assert "had no touch in their window and are not attributed: the shares below are of the other" in text
    assert " ILS" in text  # the value credited, in the shop's base currency
