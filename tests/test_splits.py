import pytest

from imagesentiment.data import DataError, ImageSet, check_set, from_folder, k_fold, train_val_test_split


@pytest.fixture(scope="module")
def checked(synthetic_root):
    return check_set(from_folder(synthetic_root)).images


def _with_duplicates(images: ImageSet, copies: int = 6) -> ImageSet:
    """The same content hash on several rows, as exact duplicate files would give."""
    frame = images.frame.copy()
    frame.loc[frame.index[:copies], "sha1"] = "same-content"
    frame.loc[frame.index[:copies], "label"] = "negative"
    return ImageSet(frame, images.classes)


def test_split_is_stratified_complete_and_reproducible(checked):
    split = train_val_test_split(checked, validation=0.2, test=0.2, seed=3)
    sides = [split.train, split.validation, split.test]
    paths = [set(s.frame["path"]) for s in sides]
    assert sum(len(p) for p in paths) == len(checked) and set().union(*paths) == set(checked.frame["path"])
    assert split.test.counts() == {"negative": 6, "neutral": 6, "positive": 6}
    again = train_val_test_split(checked, validation=0.2, test=0.2, seed=3)
    assert again.test.frame["path"].tolist() == split.test.frame["path"].tolist()
    other = train_val_test_split(checked, validation=0.2, test=0.2, seed=4)
    assert other.test.frame["path"].tolist() != split.test.frame["path"].tolist()
    member = train_val_test_split(checked, validation=0.2, test=0.2, seed=3, validation_seed=4)
    assert set(member.test.frame["path"]) == paths[2] and set(member.validation.frame["path"]) != paths[1]
    assert member.validation.counts() == split.validation.counts()


@pytest.mark.parametrize("seed", range(5))
def test_duplicates_never_straddle_a_split(checked, seed):
    images = _with_duplicates(checked)
    split = train_val_test_split(images, seed=seed)
    holding = [("same-content" in set(s.frame["sha1"])) for s in (split.train, split.validation, split.test)]
    assert sum(holding) == 1
    for train, held in k_fold(images, folds=5, seed=seed):
        assert not set(train.frame["sha1"]) & set(held.frame["sha1"])


def test_k_fold_partitions_the_set_stratified(checked):
    held = [h for _, h in k_fold(checked, folds=5, seed=0)]
    assert sorted(p for h in held for p in h.frame["path"]) == sorted(checked.frame["path"])
    assert all(h.counts() == {"negative": 6, "neutral": 6, "positive": 6} for h in held)


def test_refusals_give_the_reason(checked):
    one_class = ImageSet(checked.frame[checked.frame["label"] == "positive"], checked.classes)
    with pytest.raises(DataError, match="at least two classes"):
        train_val_test_split(one_class)
    tiny = ImageSet(checked.frame.groupby("label").head(2), checked.classes)
    with pytest.raises(DataError, match="at least 5 distinct images per class"):
        list(k_fold(tiny, folds=5))
    with pytest.raises(DataError, match="at least 10 images"):
        list(k_fold(ImageSet(checked.frame.head(4).assign(label=["negative", "positive"] * 2)), folds=10))


def test_a_set_too_small_to_split_by_class_is_refused_with_what_to_change(checked):
    """Nine clips, three per class: scikit-learn's own words reached the user, or (with bigger sides)
    a model trained on one class and reported metrics."""
    clips = ImageSet(checked.frame.groupby("label").head(3).assign(group=lambda f: range(len(f))), checked.classes)
    with pytest.raises(DataError, match=r"9 clips are too few for a 15% validation and 15% test side .* add clips, "
                                        r"or lower split.validation and split.test \(The test_size = 2"):
        train_val_test_split(clips)
    with pytest.raises(DataError, match=r"the training side would have no (negative|neutral|positive)"):
        train_val_test_split(clips, validation=0.3, test=0.4)
    two_of_three = ImageSet(checked.frame[checked.frame["label"] != "neutral"], checked.classes)
    assert len(train_val_test_split(two_of_three).train) > 0  # a class the data set lacks is no refusal
