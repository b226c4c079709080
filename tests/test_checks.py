import pandas as pd

from imagesentiment.data import check_image, check_set, from_folder
from imagesentiment.data.imageset import ImageSet

from conftest import bad_files, odd_but_valid_files


def test_each_kind_of_bad_file_is_refused_with_its_reason(tmp_path):
    files = bad_files(tmp_path)
    reasons = {name: check_image(path).reason for name, path in files.items()}
    assert reasons["zero_byte.jpg"] == "empty file (0 bytes)"
    assert reasons["truncated.jpg"].startswith("cannot be decoded") or "not an image" in reasons["truncated.jpg"]
    assert reasons["truncated.png"].startswith("cannot be decoded") or "not an image" in reasons["truncated.png"]
    assert reasons["text.jpg"].startswith("not an image")
    assert reasons["huge.png"].startswith("image too large")
    assert reasons["directory.jpg"].startswith("unreadable")


def test_odd_but_valid_images_are_accepted(tmp_path):
    for name, path in odd_but_valid_files(tmp_path).items():
        result = check_image(path)
        assert result.reason == "", (name, result.reason)
        assert len(result.sha1) == 40


def test_check_set_keeps_good_files_lists_bad_ones_and_writes_them(tmp_path, synthetic_root):
    good = from_folder(synthetic_root).frame.head(5)
    bad = bad_files(tmp_path / "bad")
    rows = pd.concat([good, pd.DataFrame({"path": [str(p) for p in bad.values()], "label": "neutral"})])
    checked = check_set(ImageSet(rows))
    assert len(checked.images) == 5
    assert sorted(checked.skipped["path"]) == sorted(str(p) for p in bad.values())
    written = pd.read_csv(checked.write_skipped(tmp_path / "run"))
    assert list(written.columns) == ["path", "reason"] and len(written) == len(bad)
    assert "huge.png" in checked.report()


def test_duplicates_are_found_and_counted(tmp_path, synthetic_root):
    frame = from_folder(synthetic_root).frame.head(4)
    copy = tmp_path / "copy.png"
    copy.write_bytes(open(frame["path"].iloc[0], "rb").read())
    rows = pd.concat([frame, pd.DataFrame({"path": [str(copy)], "label": ["negative"]})])
    checked = check_set(ImageSet(rows))
    assert checked.images.frame["sha1"].duplicated().sum() == 1
    assert any("1 exact duplicate" in note for note in checked.notes)
    source = frame["path"].iloc[0]  # labelled negative here too, then as positive: a conflict, named
    rows = pd.concat([rows, pd.DataFrame({"path": [str(tmp_path / "copy2.png")], "label": ["positive"]})])
    (tmp_path / "copy2.png").write_bytes(copy.read_bytes())
    note = next(n for n in check_set(ImageSet(rows)).notes if "exact duplicate" in n)
    assert note.endswith(f"1 duplicated images carry conflicting labels: {source} (negative) = {copy} (negative) = "
                         f"{tmp_path / 'copy2.png'} (positive)"), note
