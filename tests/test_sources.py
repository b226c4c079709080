import numpy as np
import pandas as pd
import pytest

from imagesentiment.data import (SENTIMENTS, DataError, detect_format, from_folder, from_manifest,
                                 from_votes, load_source, majority_labels)


def test_folder_finds_every_class_and_image(synthetic_root):
    images = from_folder(synthetic_root)
    assert images.classes == SENTIMENTS
    assert images.counts() == {"negative": 30, "neutral": 30, "positive": 30}
    assert all(p.startswith("/") for p in images.frame["path"])


def test_folder_with_only_some_classes_keeps_all_outputs(tmp_path, synthetic_root):
    for name in ("negative", "positive"):
        (tmp_path / name).symlink_to(synthetic_root / name)
    (tmp_path / "neutral").mkdir()
    images = from_folder(tmp_path)
    assert images.classes == SENTIMENTS
    assert images.counts()["neutral"] == 0
    assert any("empty class folder" in note for note in images.notes)


def test_folder_notes_the_photos_in_formats_it_does_not_read(tmp_path, synthetic_root):
    (tmp_path / "positive").symlink_to(synthetic_root / "positive")
    (tmp_path / "negative").mkdir()
    for name in ("IMG_1.HEIC", "IMG_2.heic", "scan.TIFF"):
        (tmp_path / "negative" / name).write_bytes(b"not read")
    images = from_folder(tmp_path)
    assert images.counts()["negative"] == 0 and len(images) == 30
    assert f"{tmp_path}: 3 photos left out, in formats not read (2 .heic, 1 .tiff); convert them" in images.notes[0]


def test_folder_notes_images_outside_the_class_folders_and_videos_read_as_images(tmp_path, synthetic_root):
    (tmp_path / "positive").symlink_to(synthetic_root / "positive")
    (tmp_path / "negative").mkdir()
    (tmp_path / "negative" / "clip.MP4").write_bytes(b"a video")
    (tmp_path / "loose.jpg").write_bytes((synthetic_root / "positive" / "0000.png").read_bytes())
    (tmp_path / "negative" / "scan.tif").write_bytes(b"II*\x00")
    images = from_folder(tmp_path)
    notes = images.notes
    assert f"{tmp_path / 'negative'}: empty class folder (1 videos: for their frames, give the format videos)" in notes
    assert sorted(images.left_out) == [(str(tmp_path / "loose.jpg"), "in no class folder"),
                                       (str(tmp_path / "negative" / "scan.tif"), "a .tif file: a format not read")]
    assert f"{tmp_path}: 1 images in no class folder left out (e.g. loose.jpg); move them into" in " ".join(notes)


def test_folder_says_when_its_classes_are_not_the_sentiments(tmp_path, synthetic_root):
    """check took Negative/ and positive/ as two classes without a word; train then refused them."""
    (tmp_path / "Negative").symlink_to(synthetic_root / "negative")
    (tmp_path / "positive").symlink_to(synthetic_root / "positive")
    images = from_folder(tmp_path)
    assert images.classes == ("Negative", "positive")
    assert (f"{tmp_path}: classes ['Negative', 'positive'] from the folder names, not ['negative', 'neutral', "
            "'positive'] (Negative: name the folder in lower case)") in images.notes
    assert from_folder(synthetic_root).notes == []


def test_folder_rejects_unknown_class_folder(tmp_path):
    (tmp_path / "happy").mkdir()
    with pytest.raises(DataError, match="happy"):
        from_folder(tmp_path, classes=SENTIMENTS)


def test_folder_of_custom_classes(tmp_path, synthetic_root):
    (tmp_path / "cats").symlink_to(synthetic_root / "negative")
    (tmp_path / "dogs").symlink_to(synthetic_root / "positive")
    assert from_folder(tmp_path).classes == ("cats", "dogs")


def _manifest(tmp_path, rows, name="manifest.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["file", "sentiment"]).to_csv(path, index=False)
    return path


def test_manifest_paths_relative_to_csv_or_root(tmp_path, synthetic_root):
    rows = [("negative/0000.png", "negative"), ("positive/0001.png", "positive")]
    csv = _manifest(tmp_path, rows)
    images = from_manifest(csv, "file", "sentiment", root=synthetic_root)
    assert images.frame["path"].tolist() == [str(synthetic_root / r[0]) for r in rows]
    local = _manifest(synthetic_root, rows, "local.csv")
    assert len(from_manifest(local, "file", "sentiment")) == 2


def test_manifest_keeps_its_own_path_and_label_columns_beside_the_chosen_ones(tmp_path, synthetic_root):
    """A CSV with a 'label' column of codes and the sentiment in another crashed with a pandas AttributeError."""
    (tmp_path / "codes.csv").write_text("path,sentiment,label\nnegative/0000.png,negative,0\npositive/0001.png,positive,2\n")
    images = from_manifest(tmp_path / "codes.csv", label_column="sentiment", root=synthetic_root)
    assert images.frame["label"].tolist() == ["negative", "positive"] and images.frame["csv_label"].tolist() == [0, 2]
    assert any("its own column label kept as csv_label" in note for note in images.notes)
    (tmp_path / "both.csv").write_text("file,label,path\nnegative/0000.png,negative,x\n")
    images = from_manifest(tmp_path / "both.csv", path_column="file", root=synthetic_root)
    assert images.frame["path"].tolist() == [str(synthetic_root / "negative" / "0000.png")]
    assert images.frame["csv_path"].tolist() == ["x"]


def test_manifest_missing_file_is_an_error_naming_it_unless_skipped(tmp_path, synthetic_root):
    csv = _manifest(tmp_path, [("negative/0000.png", "negative"), ("gone.png", "positive")])
    with pytest.raises(DataError, match="gone.png"):
        from_manifest(csv, "file", "sentiment", root=synthetic_root)
    images = from_manifest(csv, "file", "sentiment", root=synthetic_root, missing="skip")
    assert len(images) == 1 and "gone.png" in images.notes[0]


def test_manifest_refuses_paths_outside_the_root(tmp_path, synthetic_root):
    csv = _manifest(synthetic_root / "negative", [("../positive/0000.png", "positive")], "escape.csv")
    with pytest.raises(DataError, match="outside the data root"):
        from_manifest(csv, "file", "sentiment")
    assert len(from_manifest(csv, "file", "sentiment", allow_outside_root=True)) == 1


def test_manifest_unknown_label_and_column(tmp_path, synthetic_root):
    csv = _manifest(tmp_path, [("negative/0000.png", "joyful")])
    with pytest.raises(DataError, match="joyful"):
        from_manifest(csv, "file", "sentiment", root=synthetic_root)
    with pytest.raises(DataError, match="columns \\['path'\\] not found"):
        from_manifest(csv, label_column="sentiment", root=synthetic_root)


def test_manifest_duplicated_rows_are_dropped_and_counted(tmp_path, synthetic_root):
    csv = _manifest(tmp_path, [("negative/0000.png", "negative")] * 3)
    images = from_manifest(csv, "file", "sentiment", root=synthetic_root)
    assert len(images) == 1 and any("2 duplicated rows" in n for n in images.notes)


def test_an_image_listed_under_two_labels_is_left_out_and_named(tmp_path, synthetic_root):
    """Which row is right cannot be told; the first one was once kept as if the second were a mere copy."""
    csv = _manifest(tmp_path, [("negative/0000.png", "negative"), ("neutral/0000.png", "neutral"),
                               ("negative/0000.png", "positive")])
    images = from_manifest(csv, "file", "sentiment", root=synthetic_root)
    assert images.frame["label"].tolist() == ["neutral"]
    assert images.left_out == [(str(synthetic_root / "negative" / "0000.png"),
                                f"{csv}: listed with conflicting labels (line 2: negative, line 4: positive)")]
    assert any("1 image listed with conflicting labels, left out: " in n and "0000.png (line 2: negative, "
               "line 4: positive)" in n for n in images.notes), images.notes


def test_majority_labels_threshold_and_ties():
    votes = pd.DataFrame({"positive": [5, 2, 3, 0, 2], "neutral": [0, 2, 1, 0, 1],
                          "negative": [0, 1, 1, 0, 0]})
    assert majority_labels(votes, 0.5).tolist() == ["positive", None, "positive", None, "positive"]
    assert majority_labels(votes, 0.7).tolist() == ["positive", None, None, None, None]


def test_votes_csv_flickr_format(tmp_path, synthetic_root):
    csv = tmp_path / "votes.csv"
    pd.DataFrame({"ImageID": ["0000", "0001", "0002"], "Num_of_Positive": [3, 1, 2],
                  "Num_of_Neutral": [0, 1, 2], "Num_of_Negative": [0, 3, 0]}).to_csv(csv, index=False)
    images = from_votes(csv, image_root=synthetic_root / "negative", extension=".png")
    assert images.frame["label"].tolist() == ["positive", "negative"]
    assert "1 rows without a clear majority" in images.notes[0]
    assert images.left_out == [(str(synthetic_root / "negative" / "0002.png"),
                                f"{csv}: line 4: no clear majority (a tie, or agreement below 0.50)")]
    computed = from_votes(csv, image_root=synthetic_root / "negative", extension=".png",
                          min_agreement=np.float32(0.7))  # a NumPy number, e.g. a computed threshold
    assert computed.frame["label"].tolist() == ["positive"]  # 0001: 3 of 5 votes, under 0.7
    with pytest.raises(ValueError, match="min_agreement must be a number"):
        from_votes(csv, image_root=synthetic_root / "negative", extension=".png", min_agreement=True)


def test_an_image_whose_vote_rows_disagree_is_left_out(tmp_path, synthetic_root):
    """One row clear, another a tie for the same ImageID: the image trained as negative and was listed as
    left out for its tie, both without a word on the repeat."""
    csv = tmp_path / "votes.csv"
    csv.write_text("ImageID,Num_of_Positive,Num_of_Neutral,Num_of_Negative\n0000,0,2,3\n0001,0,0,3\n"
                   "0000,2,2,1\n0001,0,0,4\n")
    images = from_votes(csv, image_root=synthetic_root / "negative", extension=".png")
    assert images.frame["path"].tolist() == [str(synthetic_root / "negative" / "0001.png")]  # its repeat agrees
    assert f"{csv}: 1 rows with a clear majority left out: another row of the same image has none" in images.notes
    image = str(synthetic_root / "negative" / "0000.png")
    assert images.left_out == [(image, f"{csv}: rows of one image that disagree (line 2: negative; line 4: no "
                                       "clear majority (a tie, or agreement below 0.50))")]
    assert f"{csv}: 1 images left out in all" in images.notes[-1]


@pytest.mark.parametrize("cell, problem", [("three", "must be numbers"), ("", "must be numbers"),
                                           ("-1", "must not be negative")])
def test_votes_csv_bad_count_names_the_file_line(tmp_path, cell, problem):
    csv = tmp_path / "votes.csv"
    csv.write_text(f"ImageID,Num_of_Positive,Num_of_Neutral,Num_of_Negative\n0000,3,0,0\n0001,{cell},1,0\n")
    with pytest.raises(DataError, match=rf"votes.csv: vote counts {problem} \(lines \[3\]\)"):
        from_votes(csv)


@pytest.mark.parametrize("options, refusal", [
    ({"format": "oasis", "cuts": 4}, "cuts must be two valence values .* not 4"),  # was a TypeError traceback
    ({"format": "oasis", "cuts": ["a", "b"]}, "cuts must be two valence values"),
    ({"format": "oasis", "cuts": [3, 4, 5]}, "cuts must be two valence values"),
    ({"format": "oasis", "cuts": [4.5, 3.5]}, "cuts must be increasing"),
    ({"format": "votes", "min_agreement": "most"}, "min_agreement must be a number within \\[0, 1\\], not 'most'"),
])
def test_source_options_of_the_wrong_kind_are_refused_by_name(tmp_path, options, refusal):
    with pytest.raises(ValueError, match=refusal):
        load_source(tmp_path / "votes.csv", **options)


def test_load_source_guesses_format_and_names_unknown_options(synthetic_root):
    assert detect_format(synthetic_root) == "folder"
    assert len(load_source(synthetic_root)) == 90
    with pytest.raises(DataError, match="agreement"):
        load_source(synthetic_root, agreement="five")
    with pytest.raises(DataError, match="missing: no such file or folder"):
        detect_format(synthetic_root / "missing")
    picture = sorted((synthetic_root / "negative").glob("*.png"))[0]
    with pytest.raises(DataError, match=f"{picture.name}: neither a folder nor a CSV file"):
        detect_format(picture)
