import json
import re
from pathlib import Path

import pandas as pd
import pytest

from imagesentiment.data import DataError
from imagesentiment.inference import KerasPredictor
from imagesentiment.scoring.inputs import collect_images
from imagesentiment.scoring.batch import predict_files
from imagesentiment.table.formats import read_predictions

from conftest import bad_files


@pytest.fixture(scope="module")
def predictor(trained_cnn):
    return KerasPredictor(trained_cnn[0])


def test_inputs_from_folders_globs_files_and_csv(synthetic_root, tmp_path):
    everything = collect_images([synthetic_root])
    assert len(everything) == 90
    assert collect_images([str(synthetic_root / "negative" / "*.png")]) == everything[:30]
    (tmp_path / "list.csv").write_text("path\n" + "\n".join(everything[:3]) + "\n")
    assert collect_images([tmp_path / "list.csv", everything[0]]) == everything[:3]
    with pytest.raises(DataError, match="no such file"):
        collect_images([tmp_path / "missing.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        collect_images([tmp_path / "empty"])
    (tmp_path / "broken.csv").write_text('path\n"a.jpg\n')  # an unclosed quote
    with pytest.raises(DataError, match="broken.csv: not a readable CSV file"):
        collect_images([tmp_path / "broken.csv"])


def test_scores_match_the_keras_model_and_bad_files_are_listed(synthetic_root, tmp_path, predictor):
    bad = [str(p) for name, p in bad_files(tmp_path / "bad").items() if name != "directory.jpg"]
    paths = collect_images([synthetic_root]) + bad
    table = predict_files(predictor, paths, tmp_path / "out.csv", batch_size=16, progress=False)
    assert table["path"].tolist() == paths
    expected = predictor.predict(paths[:90])
    assert table["label"][:90].tolist() == expected["label"].tolist()
    assert (table["confidence"][:90] - expected["confidence"]).abs().max() < 1e-5
    errors = table.set_index("path")["error"][bad]
    assert errors.str.len().gt(0).all() and table["label"][90:].isna().all()
    assert "image too large" in errors[str(tmp_path / "bad" / "huge.png")]
    with pytest.raises(FileExistsError, match="resume"):
        predict_files(predictor, paths, tmp_path / "out.csv", progress=False)
    again = predict_files(predictor, paths[:3], tmp_path / "out.csv", overwrite=True, progress=False)
    assert pd.read_csv(tmp_path / "out.csv")["path"].tolist() == paths[:3] == again["path"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_csv_of_inputs_carries_its_other_columns(synthetic_root, tmp_path, trained_cnn, capsys, suffix):
    """An analyst's list of posts (post_id, path, campaign) came back as absolute paths alone, with nothing to
    join on; a 'label' of their own would have met the prediction's."""
    from imagesentiment.cli import main

    trained_cnn[0].save(tmp_path / "cnn.keras")
    paths = [str(synthetic_root / c / f"{i:04d}.png") for c, i in (("negative", 0), ("positive", 1), ("neutral", 2),
                                                                  ("negative", 0))]
    pd.DataFrame({"post_id": ["00123", "1234567890123456789", None, "14"], "path": paths,
                  "campaign": ["spring", None, "fall", "winter"], "label": ["a", "b", "c", "d"],
                  "csv_label": ["e", "f", "g", "h"], "true_label": ["negative", "positive", "positive", "negative"]}
                 ).to_csv(tmp_path / "posts.csv", index=False)
    (tmp_path / "more.csv").write_text(f"path,post_id\n{synthetic_root / 'neutral' / '0005.png'},x9\n")  # text ids
    out = tmp_path / f"scores{suffix}"
    command = ["predict", str(tmp_path / "posts.csv"), str(tmp_path / "more.csv"), "--model", str(tmp_path / "cnn.keras"),
               "--out", str(out)]
    assert main(command) == 0
    assert "posts.csv: 1 row (line 5) names an image already listed; each image is scored once, with its first " \
        "row's columns" in capsys.readouterr().err
    table = read_predictions(out) if suffix != ".csv" else pd.read_csv(out, dtype={"post_id": str})
    assert table.columns.tolist()[-5:] == ["post_id", "campaign", "csv_label", "csv_csv_label", "true_label"]
    assert table["post_id"].tolist()[:2] == ["00123", "1234567890123456789"] and pd.isna(table["post_id"].iloc[2])
    assert table["post_id"].iloc[3] == "x9"  # each cell as written, whatever the other rows and files hold
    assert table["csv_label"].tolist()[:3] == ["a", "b", "c"] and table["csv_csv_label"].tolist()[:3] == ["e", "f", "g"]
    assert table["campaign"].iloc[0] == "spring" and pd.isna(table["campaign"].iloc[1])
    assert table["label"].tolist()[:3] == ["negative", "positive", "neutral"]  # the model's, not the CSV's
    (tmp_path / "posts.csv").write_text(f"path,region\n{paths[0]},eu\n")
    assert main(command + ["--resume"]) == 2
    assert "was begun with the columns" in capsys.readouterr().err


def test_inputs_as_an_analyst_gives_them_are_each_used_or_named(synthetic_root, tmp_path):
    """Left out without a word: the photos in a linked folder, a link to a deleted photo, a folder or a
    CSV matched by a quoted pattern, a CSV row without a path and the second post of a photo reused in
    another week's list."""
    photos = sorted(str(p) for p in (synthetic_root / "positive").glob("*.png"))
    (tmp_path / "shoot").mkdir()
    (tmp_path / "shoot" / "linked").symlink_to(synthetic_root / "neutral", target_is_directory=True)
    (tmp_path / "shoot" / "loop").symlink_to(tmp_path / "shoot", target_is_directory=True)  # walked once
    (tmp_path / "shoot" / "up").symlink_to(tmp_path, target_is_directory=True)  # not walked: it holds shoot/
    (tmp_path / "shoot" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    shoot = collect_images([tmp_path / "shoot"])
    assert len(shoot) == 31 and str(tmp_path / "shoot" / "gone.jpg") in shoot  # the dead link for its error row
    (tmp_path / "shoot" / "sub").mkdir()
    (tmp_path / "shoot" / "sub" / "c.heic").write_bytes(b"")
    notes: list[str] = []
    assert collect_images([str(tmp_path / "shoot" / "**")], notes=notes) == shoot  # through the loop, once
    heic = f"{tmp_path / 'shoot'}: 1 photos left out, in formats not read (1 .heic); convert them to JPEG or PNG " \
        "to use them"
    assert notes == [heic]  # once, not once per folder the pattern matched
    (tmp_path / "week1.csv").write_text(f"path,post\n{photos[0]},w1-1\n,w1-2\n{photos[1]},w1-3\n")
    (tmp_path / "week2.csv").write_text(f"path,post\n{photos[2]},w2-1\n{photos[0]},w2-9\n")
    notes.clear()
    columns: dict = {}
    found = collect_images([str(tmp_path / "week*.csv"), str(tmp_path / "sho*"), str(tmp_path / "none*.png")],
                           notes=notes, columns=columns)
    assert found[:3] == photos[:3] and len(found) == 34
    assert columns[photos[0]] == {"post": "w1-1"} and columns[photos[2]] == {"post": "w2-1"}
    assert notes == [f"{tmp_path / 'week1.csv'}: 1 row (line 3) without a path left out",
                     f"{tmp_path / 'week2.csv'}: 1 row (line 3) names an image already listed; each image is scored "
                     "once, with its first row's columns: join the table to the CSV on path to score every row",
                     heic, f"{tmp_path / 'none*.png'}: matches nothing"]
    (tmp_path / "lists").mkdir()  # beside the lists: a captions file and an earlier output, which are no lists
    (tmp_path / "lists" / "week3.csv").write_text(f"path\n{photos[3]}\n")
    (tmp_path / "lists" / "captions.csv").write_text("file,caption\na.jpg,hello\n")
    (tmp_path / "lists" / "scores.csv").write_text(f"path,label\n{photos[4]},positive\n")
    (tmp_path / "lists" / "scores.csv.model.json").write_text("{}")
    notes.clear()
    assert collect_images([str(tmp_path / "lists" / "*.csv")], notes=notes) == photos[3:4]
    assert notes == [f"{tmp_path / 'lists' / 'captions.csv'}: matched, and left out: it has no 'path' column to "
                     "list images in", f"{tmp_path / 'lists' / 'scores.csv'}: matched, and left out: a predictions "
                     "table (its .model.json is beside it)"]
    with pytest.raises(DataError, match="captions.csv: a CSV of inputs needs a 'path' column"):  # named: a list
        collect_images([tmp_path / "lists" / "captions.csv"])
    (tmp_path / "semicolons.csv").write_text(f"path;post\n{photos[0]};1\n")
    with pytest.raises(DataError, match="fields look separated by ';': save it with commas"):
        collect_images([tmp_path / "semicolons.csv"])


def test_heat_maps_drawn_into_the_only_input_folder_is_an_error(synthetic_root, tmp_path, trained_cnn, capsys):
    """Every photo was left out as a heat map, then '0 images scored', exit 0, and no table written."""
    from imagesentiment.cli import main

    trained_cnn[0].save(tmp_path / "cnn.keras")
    folder = synthetic_root / "positive"
    assert main(["predict", str(folder), "--explain", str(folder.parent), "--model", str(tmp_path / "cnn.keras"),
                 "--out", str(tmp_path / "out.csv")]) == 2
    assert "no images left: all are in" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_max_pixels_sets_the_largest_image_decoded(synthetic_root, tmp_path, trained_cnn, capsys):
    """A panorama over the 64-megapixel default had no way in; a smaller limit guards a small server."""
    from imagesentiment.cli import main

    trained_cnn[0].save(tmp_path / "cnn.keras")
    folder = str(synthetic_root / "positive")  # 48 x 48 = 2,304 pixels each
    for limit, scored in (("2304", 30), ("2303", 0)):
        out = tmp_path / f"limit{limit}.csv"
        assert main(["predict", folder, "--model", str(tmp_path / "cnn.keras"), "--out", str(out),
                     "--max-pixels", limit]) == (0 if scored else 1)  # nothing scored: a failure, rows written
        table = pd.read_csv(out)
        assert table["label"].notna().sum() == scored and len(table) == 30
        assert (table["error"].fillna("").str.contains("image too large").sum()) == 30 - scored
    assert "0 images scored {}, 30 unreadable" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_after_an_interruption_writes_each_path_once(synthetic_root, tmp_path, predictor, suffix):
    paths = collect_images([synthetic_root])
    out = tmp_path / f"out{suffix}"
    predict_files(predictor, paths[:40], out, batch_size=16, progress=False)
    journal = out.with_name(out.name + ".partial.jsonl") if suffix == ".parquet" else out
    if suffix == ".parquet":  # a killed parquet run leaves its journal, not the final file
        out.rename(tmp_path / "done-before.parquet")
        pd.read_parquet(tmp_path / "done-before.parquet").to_json(journal, orient="records", lines=True)
    with open(journal, "a") as handle:  # killed half-way through writing a row
        handle.write('{"path": "half-writ' if suffix != ".csv" else paths[45] + ",posit")
    table = predict_files(predictor, paths, out, batch_size=16, resume=True, progress=False)
    assert sorted(table["path"]) == sorted(paths) and table["path"].is_unique
    final = pd.read_parquet(out) if suffix == ".parquet" else (
        pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_csv(out))
    assert len(final) == 90 and final["path"].is_unique and final["label"].notna().all()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_tries_the_images_that_failed_again(synthetic_root, tmp_path, predictor, suffix):
    """An analyst who replaced a broken download and resumed kept its 'Input is empty' row for good."""
    photos = collect_images([synthetic_root / "positive"])[:3]
    broken = tmp_path / "late.png"
    broken.write_bytes(b"")
    paths = photos + [str(broken)]
    columns = {p: {"post": f"00{i}"} for i, p in enumerate(paths)}  # kept as written through the rewrite
    out = tmp_path / f"out{suffix}"
    first = predict_files(predictor, paths, out, progress=False, columns=columns)
    assert first["label"].isna().tolist() == [False, False, False, True]
    broken.write_bytes(Path(photos[0]).read_bytes())

    class StoppedWhileScoring(KerasPredictor):  # Ctrl-C once the model is checked, before the retry is written
        def _outputs(self, pixels):
            if len(pixels) != 3:  # the three probe images of the model check
                raise KeyboardInterrupt
            return super()._outputs(pixels)
    with pytest.raises(KeyboardInterrupt):
        predict_files(StoppedWhileScoring(predictor.model), paths, out, resume=True, progress=False, columns=columns)
    kept = read_predictions(out)
    assert kept["path"].tolist() == paths and kept["error"].iloc[3], "the error row stays until its retry is written"
    again = predict_files(predictor, paths, out, resume=True, progress=False, columns=columns)
    assert again.attrs["read_now"] == 1 and again["path"].tolist() == paths
    final = read_predictions(out) if suffix != ".csv" else pd.read_csv(out, dtype={"post": str})
    assert final["path"].tolist() == paths and final["label"].notna().all()
    assert final["post"].tolist() == ["000", "001", "002", "003"]
    assert final["confidence"].iloc[3] == pytest.approx(final["confidence"].iloc[0], abs=1e-5)
    assert predict_files(predictor, paths, out, resume=True, progress=False, columns=columns).attrs["read_now"] == 0


def test_resume_refuses_another_model_than_the_one_that_began_the_table(synthetic_root, tmp_path, trained_cnn):
    """Resuming with another model once appended its rows under the first one's columns, unmarked."""
    import keras

    from imagesentiment.models.build import build_cnn

    paths, out = collect_images([synthetic_root])[:6], tmp_path / "out.csv"
    predict_files(KerasPredictor(trained_cnn[0]), paths[:3], out, progress=False)
    keras.utils.set_random_seed(1)
    others = {"classes ['negative', 'neutral', 'positive'] then, ['a', 'b', 'c'] now":
              KerasPredictor(trained_cnn[0], ["a", "b", "c"]),
              "same classes and input size, other probabilities": KerasPredictor(build_cnn(3, (48, 48, 3), (16, 32)))}
    for difference, other in others.items():
        with pytest.raises(ValueError, match=f"out.csv was begun by another model \\({re.escape(difference)}"):
            predict_files(other, paths, out, resume=True, progress=False)
        assert pd.read_csv(out)["path"].tolist() == paths[:3]
    table = predict_files(KerasPredictor(trained_cnn[0]), paths, out, resume=True, progress=False)  # the same one
    assert table["path"].tolist() == paths
    predict_files(others["same classes and input size, other probabilities"], paths[:1], out, overwrite=True,
                  progress=False)  # a new table records its own model
    predict_files(others["same classes and input size, other probabilities"], paths[:2], out, resume=True,
                  progress=False)
    (tmp_path / "out.csv.model.json").unlink()  # the record gone: another model could no longer be told
    with pytest.raises(ValueError, match="out.csv holds rows but out.csv.model.json, the record of the model"):
        predict_files(KerasPredictor(trained_cnn[0]), paths, out, resume=True, progress=False)
    assert pd.read_csv(out)["path"].tolist() == paths[:2]


def test_heat_maps_are_written_beside(synthetic_root, tmp_path, predictor):
    paths = collect_images([synthetic_root / "positive"])[:3]
    table = predict_files(predictor, paths, tmp_path / "out.jsonl", explain_dir=tmp_path / "maps", progress=False)
    assert all((tmp_path / "maps").joinpath(p).is_file() for p in table["heatmap"])
    assert len([p for p in (tmp_path / "maps").glob("*.jpg") if not p.stem.endswith("_overlay")]) == 3  # the panels
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["label"] == "positive"


def test_a_batch_size_below_one_is_refused_and_writes_nothing(synthetic_root, tmp_path, predictor):
    paths = collect_images([synthetic_root])[:4]
    done = predict_files(predictor, paths, tmp_path / "done.csv", progress=False)
    for size in (0, -3):  # -3 once scored nothing and wrote an empty table without a word
        with pytest.raises(ValueError, match=f"batch_size must be at least 1, got {size}"):
            predict_files(predictor, paths, tmp_path / "out.csv", batch_size=size, progress=False)
        with pytest.raises(ValueError, match="batch_size must be at least 1"):  # nothing done is lost
            predict_files(predictor, paths, tmp_path / "done.csv", batch_size=size, overwrite=True, progress=False)
        with pytest.raises(ValueError, match="batch_size must be at least 1"):
            predictor.probabilities(paths, batch_size=size)
    assert not (tmp_path / "out.csv").exists()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "done.csv"), done)
