"""The HTML report, opened in a real headless Chromium (skipped where none is installed)."""
import contextlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imagesentiment.evaluation.evaluate import predict_probabilities
from imagesentiment.report.html import build_report
from imagesentiment.table.formats import read_predictions

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def predictions(trained_cnn, tmp_path_factory):
    model, images = trained_cnn
    probabilities = predict_probabilities(model, images)
    classes = list(images.classes)
    frame = pd.DataFrame(probabilities, columns=classes)
    frame.insert(0, "path", images.frame["path"])
    frame.insert(1, "label", [classes[i] for i in probabilities.argmax(1)])
    frame.insert(2, "confidence", probabilities.max(1))
    truth = images.frame["label"].copy()
    truth.iloc[:4] = ["positive", "neutral", "positive", "neutral"]  # a few known mistakes
    frame["true_label"] = truth
    path = tmp_path_factory.mktemp("report") / "predictions.csv"
    frame.to_csv(path, index=False)
    return path


def test_report_is_one_self_contained_file(predictions, tmp_path):
    out = build_report(read_predictions(predictions), tmp_path / "report.html")
    page = out.read_text()
    assert page.count('class="card') == 90 and page.count("data:image/jpeg;base64,") == 90
    assert "http://" not in page and "https://" not in page and "<link" not in page


def test_a_large_table_keeps_a_gallery_of_the_mistakes_then_each_class_in_turn(predictions, tmp_path):
    """A table of thousands made a page of one thumbnail each (3,000 photos: 22 MB, 8.7 s); the gallery
    is capped, while the counts and metrics still cover every image."""
    frame = read_predictions(predictions)
    wrong = frame["label"] != frame["true_label"]
    page = build_report(frame, tmp_path / "truth.html", gallery=20).read_text()
    cards = re.findall(r'class="card[^"]*" data-order="\d+" data-label="(\w+)"[^>]*data-correct="(\w+)"', page)
    assert len(cards) == 20 and [c for _, c in cards[:wrong.sum()]] == ["false"] * wrong.sum()
    assert "20 of 90 images in the gallery: the misclassified first" in page
    low, high = map(float, re.search(r"id='accuracy'>accuracy [\d.]+ \(([\d.]+)–([\d.]+)\)", page).groups())
    assert low <= (~wrong).mean() <= high and "95 % interval" in page
    assert f'data-label="positive">{int((frame["label"] == "positive").sum())}</td>' in page  # counts: all 90
    plain = build_report(frame.drop(columns="true_label"), tmp_path / "plain.html", gallery=30).read_text()
    labels = re.findall(r'class="card" data-order="\d+" data-label="(\w+)"', plain)
    assert sorted(labels) == sorted(["negative", "neutral", "positive"] * 10), "each class in turn"
    assert build_report(frame, tmp_path / "all.html", gallery=0).read_text().count('class="card') == 90


def test_a_table_labelled_in_part_is_judged_on_its_labelled_rows(predictions, tmp_path):
    """An analyst labels a sample: one empty true_label once dropped every figure without a word."""
    frame = read_predictions(predictions)
    frame.loc[1::2, "true_label"] = np.nan
    page = build_report(frame, tmp_path / "part.html").read_text()
    sample = frame.iloc[::2]
    wrong = int((sample["label"] != sample["true_label"]).sum())
    assert "on the 45 of 90 scored images with a true label" in page
    assert f"accuracy {1 - wrong / 45:.3f} (" in page and f"{wrong} misclassified" in page
    assert page.count('data-correct="false"') == wrong and page.count("<div>true: ") == 45


def test_report_in_a_real_browser(predictions, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed (test extra)")
    frame = read_predictions(predictions)
    out = build_report(frame, tmp_path / "report.html")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(out.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"))
        counts = {e.get_attribute("data-label"): int(e.text_content()) for e in page.query_selector_all("td.count")}
        assert counts == {c: int((frame["label"] == c).sum()) for c in ("negative", "neutral", "positive")}
        assert page.text_content("#shown") == "90"
        wrong = int((frame["label"] != frame["true_label"]).sum())
        assert f"{wrong} misclassified" in page.text_content("#accuracy")
        first = page.query_selector_all(".card")[:wrong]
        assert all(c.get_attribute("data-correct") == "false" for c in first), "mistakes come first"
        page.select_option("#label", "positive")
        visible = [c for c in page.query_selector_all(".card") if c.is_visible()]
        assert len(visible) == counts["positive"] == int(page.text_content("#shown"))
        assert all(c.get_attribute("data-label") == "positive" for c in visible)
        page.select_option("#label", "all")
        page.check("#wrong")
        assert int(page.text_content("#shown")) == wrong
        page.uncheck("#wrong")
        page.fill("#confidence", "0.99")
        page.dispatch_event("#confidence", "input")
        assert int(page.text_content("#shown")) == int((frame["confidence"] >= 0.99).sum())
        browser.close()
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_the_label_colour_fades_with_the_confidence():
    from imagesentiment.report.html import shade

    def from_grey(colour: str) -> int:
        return sum(abs(int(colour[i:i + 2], 16) - 0xAA) for i in (1, 3, 5))

    sure, unsure, chance = (from_grey(shade("positive", c, 3)) for c in (0.99, 0.59, 1 / 3))
    assert sure > unsure > chance > 0  # still green at chance, and greener the surer
    assert shade("positive", 1.0, 3) == "#27ae60"  # a certain answer in the class's own colour


def test_report_refuses_an_empty_table(tmp_path):
    with pytest.raises(ValueError, match="no scored images"):
        build_report(pd.DataFrame({"path": ["a.jpg"], "label": [np.nan], "confidence": [np.nan]}),
                     tmp_path / "r.html")


def test_report_lists_every_class_of_the_model_in_its_order(predictions, tmp_path, capsys):
    """A model with its own class names that predicts one of them for every image: the report once
    listed that class alone, and a true label of a never-predicted class crashed it (a float index)."""
    from imagesentiment.cli import main

    frame = read_predictions(predictions).rename(columns={"negative": "sad", "neutral": "calm", "positive": "happy"})
    frame = frame.assign(label="calm", true_label="happy")
    frame.to_csv(tmp_path / "moods.csv", index=False)
    assert main(["report", str(tmp_path / "moods.csv"), "--out", str(tmp_path / "moods.html")]) == 0
    page = (tmp_path / "moods.html").read_text()
    assert [c for c in ("sad", "calm", "happy") if f'<option value="{c}">' in page] == ["sad", "calm", "happy"]
    assert "<p id='accuracy'>accuracy 0.000" in page and 'data-label="sad">0</td>' in page
    frame.loc[3, "true_label"] = "hapy"
    frame.to_csv(tmp_path / "typo.csv", index=False)
    assert main(["report", str(tmp_path / "typo.csv"), "--out", str(tmp_path / "typo.html")]) == 2
    assert "typo.csv: true_label values ['hapy'] are not among the model's classes ['sad', 'calm', 'happy']" in \
        capsys.readouterr().err
    assert not (tmp_path / "typo.html").exists()


def test_report_replaces_only_its_own_report_of_the_same_table(predictions, tmp_path, capsys):
    """The same command run again replaces its report; another table's report, or a page this tool did not
    write, is kept unless --overwrite (a second ``report`` in one folder once replaced the first silently)."""
    from imagesentiment.cli import main

    out = str(tmp_path / "report.html")
    other = tmp_path / "other.csv"
    read_predictions(predictions).iloc[:10].to_csv(other, index=False)
    assert main(["report", str(predictions), "--out", out]) == 0
    first = Path(out).read_text()
    assert main(["report", str(predictions), "--out", out, "--title", "again"]) == 0  # same table: replaced
    assert "<title>again</title>" in Path(out).read_text()
    assert main(["report", str(other), "--out", out]) == 2
    said = capsys.readouterr().err  # the command line's option alone, not the Python argument beside it
    assert f"report.html: holds the report on {predictions}; pass --overwrite to replace it" in said
    assert "<title>again</title>" in Path(out).read_text()
    assert main(["report", str(other), "--out", out, "--overwrite"]) == 0
    assert Path(out).read_text().count('class="card') == 10 < first.count('class="card')

    from imagesentiment.report.html import STYLE  # a report of a release that did not record its table: replaced
    earlier_release = tmp_path / "earlier.html"
    earlier_release.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>\n<style>{STYLE}'
                               '</style></head><body></body></html>')
    assert main(["report", str(predictions), "--out", str(earlier_release)]) == 0
    assert 'name="imagesentiment-predictions"' in earlier_release.read_text()

    own = tmp_path / "index.html"
    own.write_text("<html>the team's own page</html>")
    assert main(["report", str(predictions), "--out", str(own)]) == 2
    assert "index.html: exists and is not a report written by imagesentiment" in capsys.readouterr().err
    assert own.read_text() == "<html>the team's own page</html>"


def test_report_on_a_video_table_says_where_the_video_report_is(tmp_path):
    table = tmp_path / "frames.csv"
    pd.DataFrame({"frame": [0, 5], "time_s": [0.0, 0.5], "label": ["positive"] * 2, "confidence": [0.9, 0.8]}) \
        .to_csv(table, index=False)
    with pytest.raises(ValueError, match="is a video's per-frame table .* timeline.png and summary.json"):
        read_predictions(table)


@contextlib.contextmanager
def report_page(report: Path, width: int, height: int, name: str):
    """The report open in headless Chromium at ``width`` x ``height`` px, its first screen kept as a test artefact
    (``report-NAME.png``); the test skips where Chromium or Playwright is missing."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed (test extra)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(report.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=False)
        yield page
        browser.close()


def test_a_report_worth_sending_in_a_wide_browser(predictions, tmp_path):
    """At 1400 px the cards fill the width, the heat maps have a colour legend, the histogram its axes, no
    probability pair wraps, the header names the model's classes and the date, a card opens large, and the
    paths show what tells them apart. The screenshots are kept as the test's artefacts."""
    frame = read_predictions(predictions)
    frame["heatmap"] = frame["path"]  # any picture stands in for an overlay here
    table = tmp_path / "scores.csv"
    frame.to_csv(table, index=False)
    with report_page(build_report(frame, tmp_path / "report.html", source=table), 1400, 1000, "wide") as page:
        gallery = page.query_selector("#gallery").bounding_box()
        boxes = [c.bounding_box() for c in page.query_selector_all(".card")]
        first_row = [b for b in boxes if abs(b["y"] - boxes[0]["y"]) < 1]
        assert len(first_row) >= 3 and max(b["x"] + b["width"] for b in first_row) >= gallery["x"] + 0.95 * gallery["width"]
        assert page.query_selector("#legend .ramp") is not None and "high" in page.text_content("#legend")
        assert {"confidence", "images"} <= {t.text_content() for t in page.query_selector_all("#histogram text")}
        heights = [s.bounding_box()["height"] for s in page.query_selector_all(".card .prob")]
        assert max(heights) < 1.5 * min(heights), "a probability pair wrapped"
        header = page.text_content("#model")
        assert "classes: negative, neutral, positive" in header and "scored 20" in header
        for card in page.query_selector_all(".card"):  # the folder all share left out, the whole path on hover
            shown_path, full = card.query_selector(".path").text_content(), card.get_attribute("data-path")
            assert not os.path.isabs(shown_path) and full.endswith(os.sep + shown_path) and len(shown_path) < len(full)
        page.click(".card")
        shown = page.query_selector("#viewer img").bounding_box()
        assert page.is_visible("#viewer") and shown["width"] >= 400
        page.screenshot(path=str(ARTIFACTS / "report-viewer.png"))


def test_a_report_read_on_a_phone(predictions, tmp_path):
    """At 390 px (a phone) nothing runs off the side, the thumbnails are square crops, and the card opened shows
    the whole image, as it is, not cropped."""
    report = build_report(read_predictions(predictions), tmp_path / "report.html", source=predictions)
    with report_page(report, 390, 844, "phone") as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
        for selector in (".card", "#histogram", "#legend", ".controls"):
            for element in page.query_selector_all(selector):
                box = element.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{selector} runs off the side"
        for image in page.query_selector_all(".card img"):
            box = image.bounding_box()
            assert abs(box["width"] - box["height"]) <= 1 and box["width"] >= 120
        page.click(".card")
        shown = page.query_selector("#viewer img")
        box, natural = shown.bounding_box(), shown.evaluate("i => i.naturalWidth / i.naturalHeight")
        assert page.is_visible("#viewer") and box["x"] + box["width"] <= 390
        assert box["width"] / box["height"] == pytest.approx(natural, rel=0.02)  # the whole image


def test_the_header_names_the_model_and_when_it_scored(tmp_path, trained_cnn):
    """An analyst forwarding a report could not tell which model scored the photos, nor when."""
    import imagesentiment
    from imagesentiment.scoring.batch import predict_files

    model, images = trained_cnn
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    table = tmp_path / "scores.csv"
    predict_files(imagesentiment.load(run), images.frame["path"].tolist()[:6], table, progress=False)
    page = build_report(read_predictions(table), tmp_path / "r.html", source=table).read_text()
    header = re.search(r'<p class="muted" id="model">(.*?)</p>', page).group(1)
    assert f'model: Keras model <span title="{run}">run</span>' in header  # its name, the whole path on hover
    assert "classes: negative, neutral, positive" in header
    assert "input 48×48 px" in header and re.search(r"scored \d{4}-\d\d-\d\d \d\d:\d\d", header)
