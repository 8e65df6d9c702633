"""The marketing report: a self-contained page that really renders, charts included, in Chromium.

The page is opened in headless Chromium (the system's ``/usr/bin/chromium``, driven by
Playwright) from a file URL with the network switched off, so every chart must come
from inside the file; each image must have decoded (``naturalWidth > 0``), not merely
be present. A full-page screenshot is written and checked to be a real, non-blank image.
"""

from __future__ import annotations

import duckdb
import pytest
from mlflow import MlflowClient
from PIL import Image, ImageStat
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from cdp.cli import app
from marketing.model_quality import ModelRun, quality_in_words
from tests.trained_shop import SHOP_NAME, run_cli
from training.tracking import CHAMPION, alias

CHROMIUM = "/usr/bin/chromium"
CHARTS = 4


@pytest.fixture(scope="module")
def report(trained_shop, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    output = run_cli("report", "--config", str(trained_shop.config), "--out", str(out), "--top", "20",
                     tracking_uri=trained_shop.tracking_uri)
    return out, output


def _render(path, screenshot):
    """Open ``path`` in headless Chromium with no network; return what the page shows."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_function("Array.from(document.images).every(img => img.complete)")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({src: e.src.slice(0, 22), w: e.naturalWidth, h: e.naturalHeight}))")
            shown = {
                "title": page.title(),
                "images": images,
                "sections": page.eval_on_selector_all("section", "els => els.map(e => e.id)"),
                "top_rows": page.locator("table.top-list tbody tr").count(),
                "top_header": page.eval_on_selector_all("table.top-list th", "els => els.map(e => e.textContent)"),
                "headline": page.locator("p.headline").inner_text(),
                "quality": page.eval_on_selector_all("#model-quality li", "els => els.map(e => e.textContent)"),
                "text": page.locator("body").inner_text(),
            }
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return shown


def test_report_renders_in_chromium_with_every_chart_decoded(report, tmp_path):
    path, _ = report
    shot = tmp_path / "report.png"
    shown = _render(path, shot)
    assert shown["title"].startswith("Customer report as of 2026-10-31")
    assert shown["sections"] == ["segments", "churn-risk", "top-list", "model-quality"]
    assert len(shown["images"]) == CHARTS
    for image in shown["images"]:
        assert image["src"] == "data:image/png;base64,"
        assert image["w"] > 0 and image["h"] > 0, f"a chart did not decode: {image}"
    with Image.open(shot) as picture:
        assert picture.format == "PNG"
        assert picture.width == 1200 and picture.height > 2000
        spread = ImageStat.Stat(picture.convert("L")).stddev[0]
        assert spread > 10, "the screenshot is blank"


def test_report_headline_and_top_list_match_the_store(report, trained_shop, tmp_path):
    path, printed = report
    con = duckdb.connect(str(trained_shop.config.parent / "cdp.duckdb"), read_only=True)
    try:
        scored, buyers, high = con.sql("SELECT count(*), count(churn_probability), "
                                       "count(*) FILTER (churn_probability >= 0.75) FROM scores").fetchall()[0]
        emails = [r[0] for r in con.sql("SELECT email FROM customers WHERE email IS NOT NULL").fetchall()]
    finally:
        con.close()
    shown = _render(path, tmp_path / "shot.png")
    assert shown["headline"].startswith(f"{scored:,} customers scored as of 2026-10-31; {buyers:,} have bought")
    assert f"{high:,} are at high churn risk" in shown["headline"]
    assert shown["top_rows"] == 20
    assert "email" not in shown["top_header"] and "phone" not in shown["top_header"]
    assert not any(email in shown["text"] for email in emails), "the report shows an email address"
    assert f"report on {scored:,} customers" in " ".join(printed.split())


def test_report_states_the_churn_models_quality_from_its_registry_run(report, trained_shop, tmp_path):
    client = MlflowClient(tracking_uri=trained_shop.tracking_uri, registry_uri=trained_shop.tracking_uri)
    version = client.get_model_version_by_alias("cdp-churn", alias(CHAMPION, SHOP_NAME, 90))
    auc = client.get_run(version.run_id).data.metrics["churn_roc_auc"]
    shown = _render(report[0], tmp_path / "shot.png")
    assert any(f"{auc:.0%} of the time (ROC-AUC {auc:.2f}" in line for line in shown["quality"]), shown["quality"]


def test_report_without_a_model_registry_still_renders_and_says_why(trained_shop, tmp_path):
    out = tmp_path / "report.html"
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}"
    printed = run_cli("report", "--config", str(trained_shop.config), "--out", str(out), tracking_uri=missing)
    assert "without model quality: no model registry at" in " ".join(printed.split())
    assert not (tmp_path / "nowhere").exists()
    shown = _render(out, tmp_path / "shot.png")
    assert len(shown["images"]) == CHARTS and all(i["w"] > 0 for i in shown["images"])
    assert any(line.startswith("Model quality unavailable: no model registry") for line in shown["quality"])


def test_report_refuses_a_file_that_is_not_html(trained_shop, tmp_path):
    result = CliRunner().invoke(app, ["report", "--config", str(trained_shop.config), "--out",
                                      str(tmp_path / "report.pdf")],
                                env={"MLFLOW_TRACKING_URI": trained_shop.tracking_uri})
    assert result.exit_code == 1
    assert "the report is an HTML page" in result.output
    assert not (tmp_path / "report.pdf").exists()


def test_model_quality_reads_as_plain_sentences_with_the_metric_beside_them():
    runs = {"churn": ModelRun("churn", "3", {"churn_roc_auc": 0.88, "bgnbd_churn_roc_auc": 0.80,
                                             "purchase_lift_top10": 2.4}),
            "segments": ModelRun("segments", "2", {"silhouette": 0.12})}
    lines = quality_in_words(runs)
    assert lines[0] == ("Churn model (version 3): on customers it never saw in training, it ranks a customer who "
                        "left above one who stayed 88% of the time (ROC-AUC 0.88; 50% would be a coin toss).")
    assert lines[1] == "That is better than the classical BG/NBD model on the same customers (80%)."
    assert lines[2] == "Among the 10% of customers it rates safest, 2.4 times as many bought again as on average."
    assert lines[3].startswith("Segments (version 2): the groups are overlapping")
    assert quality_in_words({}) == []


def test_model_quality_says_how_well_the_first_purchase_model_ranks_people_who_have_not_bought():
    runs = {"first-purchase": ModelRun("first-purchase", "4", {"first_purchase_roc_auc": 0.87,
                                                               "engagement_first_purchase_roc_auc": 0.76})}
    assert quality_in_words(runs) == [
        "First-purchase model (version 4): among people who had not bought yet, it ranks one who then made a first "
        "purchase above one who did not 87% of the time (ROC-AUC 0.87); their engagement alone did so 76% of the "
        "time."]


def test_the_report_shows_money_in_the_shops_currency_and_probabilities_as_percentages(report):
    path, _ = report
    page = path.read_text(encoding="utf-8")
    headline = page[page.index('<p class="headline">'):page.index("</p>", page.index('<p class="headline">'))]
    assert " ILS of revenue is at risk" in headline  # [currency] base = "ILS" in the sample shop's cdp.toml
    top = page[page.index('<table class="top-list">'):page.index("</table>", page.index('<table class="top-list">'))]
    assert top.count(" ILS</td>") == 20 and top.count("%</td>") >= 20
