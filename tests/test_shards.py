import numpy as np
import pytest

from imagesentiment.data import from_folder, make_dataset, train_val_test_split
from imagesentiment.data.shards import (image_batches, make_shard_dataset, read_shards, read_split, write_shards,
                                        write_split)


def test_shards_round_trip_to_the_same_batches(synthetic_root, tmp_path):
    images = from_folder(synthetic_root)
    written = write_shards(images, str(tmp_path / "shards" / "train"), shard_size=25)
    assert len(written.files) == 4 and written.count == 90
    shards = read_shards(str(tmp_path / "shards" / "train"))
    assert shards.files == written.files and shards.classes == images.classes
    assert not list((tmp_path / "shards").glob("*.partial"))
    from_files = [(x.numpy(), y.numpy()) for x, y in make_dataset(images, (32, 32), 30)]
    from_shards = [(x.numpy(), y.numpy()) for x, y in make_shard_dataset(shards, (32, 32), 30)]
    # one file per shard is read in turn (interleaved), so compare as sets of (image, label)
    key = lambda batches: sorted((y, x.tobytes()) for xs, ys in batches for x, y in zip(xs, ys))
    assert key(from_files) == key(from_shards)


def test_training_reads_shards_in_a_new_order_each_epoch(synthetic_root, tmp_path):
    shards = write_shards(from_folder(synthetic_root), str(tmp_path / "s"), shard_size=30)
    ds = make_shard_dataset(shards, (32, 32), 90, training=True, seed=0)
    first, second = (next(iter(ds))[1].numpy() for _ in range(2))
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)


def test_writing_a_set_again_leaves_only_its_own_shard_files(synthetic_root, tmp_path):
    """An earlier set at the same prefix in 4 files, then 2: a glob of PREFIX-*.tfrecord (score-beam
    --tfrecords) would otherwise read 6 files and every image twice."""
    images = from_folder(synthetic_root)
    write_shards(images, str(tmp_path / "train"), shard_size=25)
    (tmp_path / "train-notes.txt").write_text("not a shard")  # beside the prefix, not of the set
    again = write_shards(images, str(tmp_path / "train"), shard_size=45)
    assert sorted(map(str, tmp_path.glob("train-*.tfrecord"))) == sorted(again.files)
    assert (tmp_path / "train-notes.txt").exists()


def test_missing_shard_set_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shard set"):
        read_shards(str(tmp_path / "nothing"))


def test_shards_on_a_file_system_url(synthetic_root):
    """Shards go through TensorFlow's file systems: ``ram://`` (built in) stands in for ``gs://``."""
    import tensorflow as tf

    images = from_folder(synthetic_root).subset(range(0, 90, 3))
    prefix = "ram://imagesentiment-test/shards/train"
    try:
        write_shards(images, prefix, shard_size=12)
        shards = read_shards(prefix)
        assert [f.rsplit("/", 1)[-1] for f in shards.files] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
        assert all(f.startswith("ram://") for f in shards.files)
        labels = np.concatenate([y.numpy() for _, y in make_shard_dataset(shards, (32, 32), 8, ordered=True)])
        assert labels.tolist() == images.label_ids.tolist()
    finally:
        tf.io.gfile.rmtree("ram://imagesentiment-test")


def test_shard_batches_weigh_images_by_class_only(synthetic_root, tmp_path):
    write_split(train_val_test_split(from_folder(synthetic_root), 0.2, 0.2, 0), str(tmp_path / "s"))
    train = read_split(str(tmp_path / "s")).train
    per_class = np.array([0.5, 2.0, 1.0])
    labels = train.label_ids.to_numpy()
    for _, ys, ws in image_batches(train, (24, 24), 16, training=True, weights=per_class[labels]):
        np.testing.assert_array_equal(ws.numpy(), per_class[ys.numpy()])
    with pytest.raises(ValueError, match="only be weighted by class"):
        image_batches(train, (24, 24), 16, weights=np.arange(len(train)) + 1.0)
