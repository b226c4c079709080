"""Batch scoring on Apache Beam's local runner gives what ``imagesentiment predict`` gives."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("apache_beam", reason="the scale extra is not installed (pip install -e '.[scale]')")

from imagesentiment.cli import main
from imagesentiment.data import from_folder, make_synthetic_set
from imagesentiment.data.shards import write_shards
from imagesentiment.export import export_savedmodel
from imagesentiment.scoring.beam import read_scores, score

from conftest import bad_files


@pytest.fixture(scope="module")
def collection(tmp_path_factory, trained_cnn):
    """300 images, two unusable files among them, and the trained CNN exported as a SavedModel."""
    root = tmp_path_factory.mktemp("collection")
    make_synthetic_set(root / "images", per_class=100, size=40, seed=7)
    for name, path in bad_files(root / "images" / "bad").items():
        if name in ("text.jpg", "truncated.png"):
            continue
        path.unlink() if path.is_file() else path.rmdir()
    version = export_savedmodel(trained_cnn[0], root / "models", version=1)
    return root, version


def by_path(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values("path", ignore_index=True).fillna({"error": ""})


def assert_same_scores(beam: pd.DataFrame, predicted: pd.DataFrame, atol: float) -> None:
    beam, predicted = by_path(beam), by_path(predicted)
    assert beam["path"].tolist() == predicted["path"].tolist()
    assert beam["label"].fillna("").tolist() == predicted["label"].fillna("").tolist()
    assert beam["error"].tolist() == predicted["error"].tolist()
    for column in ("confidence", "negative", "neutral", "positive"):
        np.testing.assert_allclose(beam[column].astype(float), predicted[column].astype(float), atol=atol)


def test_local_runner_scores_like_predict(collection, tmp_path):
    root, version = collection
    images = root / "images"
    assert main(["predict", str(images), "--model", str(version), "--out", str(tmp_path / "predict.parquet")]) == 0
    predicted = pd.read_parquet(tmp_path / "predict.parquet")  # no heatmap column: no --explain
    assert len(predicted) == 302 and (predicted["error"] != "").sum() == 2

    files = score([str(images)], str(version), str(tmp_path / "beam" / "scores"))
    assert files and all(f.endswith(".parquet") for f in files)
    scores = read_scores(str(tmp_path / "beam" / "scores"))
    assert len(scores) == 302
    assert_same_scores(scores, predicted, atol=1e-6)
    assert scores.loc[scores["error"] != "", "path"].str.contains("bad").all()
    assert (scores["label"].dropna().str.len() > 0).all()
    with pytest.raises(FileExistsError, match="already written"):
        score([str(images)], str(version), str(tmp_path / "beam" / "scores"))


def test_csv_through_the_command_line_and_tfrecords_in(collection, tmp_path):
    root, version = collection
    images = root / "images"
    assert main(["predict", str(images), "--model", str(version), "--out", str(tmp_path / "predict.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "predict.csv", keep_default_na=False, na_values=[""])
    assert main(["score-beam", str(images), "--model", str(version), "--out", str(tmp_path / "csv" / "scores"),
                 "--format", "csv", "--direct_num_workers=1"]) == 0
    assert_same_scores(read_scores(str(tmp_path / "csv" / "scores"), "csv"), predicted,
                       atol=2e-6)  # both rounded to 6 decimals

    write_shards(from_folder(images), str(tmp_path / "shards" / "all"), shard_size=128)  # the bad files too
    score([str(tmp_path / "shards" / "all-*.tfrecord")], str(version), str(tmp_path / "records" / "scores"),
          tfrecords=True)
    from_records = read_scores(str(tmp_path / "records" / "scores"))
    assert len(from_records) == 302
    assert_same_scores(from_records, predicted, atol=2e-6)


def test_a_model_that_is_not_an_exported_version_is_refused_by_name(collection, tmp_path, capsys):
    root, version = collection
    (tmp_path / "run").mkdir()
    for model, why in ((version.parent, "no saved_model.pb"), (tmp_path / "run", "no saved_model.pb")):
        assert main(["score-beam", str(root / "images"), "--model", str(model), "--out", str(tmp_path / "s")]) == 2
        assert f"{model}: not an exported SavedModel version ({why})" in capsys.readouterr().err
    assert main(["score-beam", str(root / "images"), "--model", str(tmp_path / "gone"), "--out", str(tmp_path / "s")]) == 2
    assert f"{tmp_path / 'gone'}: no such file or folder" in capsys.readouterr().err
    assert not list(tmp_path.glob("s-*"))


def test_a_beam_option_beam_does_not_know_is_refused_before_anything_is_replaced(collection, tmp_path, capsys):
    """Beam only logs an unknown option and runs: a misspelt --runner would score on this machine."""
    root, version = collection
    earlier = tmp_path / "s-00000-of-00001.parquet"
    earlier.write_bytes(b"earlier scores")
    assert main(["score-beam", str(root / "images"), "--model", str(version), "--out", str(tmp_path / "s"),
                 "--overwrite", "--runer", "DataflowRunner"]) == 2
    assert "Beam does not know the option --runer (did you mean --runner?)" in capsys.readouterr().err
    assert earlier.read_bytes() == b"earlier scores"
