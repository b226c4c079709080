import subprocess
import sys

import pytest

from imagesentiment.training.config import ConfigError, check_config, load_config


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_paths_resolve_against_the_file_and_overrides_apply(tmp_path):
    config = load_config(_write(tmp_path, "data: {source: {path: imgs}}\ntrain: {epochs: 3}\n"),
                         {"train.batch_size": 8, "model.widths": [8, 16]})
    assert config.name == "run" and config.data.source.path == str(tmp_path / "imgs")
    assert (config.train.epochs, config.train.batch_size, config.model.widths) == (3, 8, [8, 16])
    assert config.train.learning_rate == 1e-3 and config.data.classes == ["negative", "neutral", "positive"]


@pytest.mark.parametrize("text, message", [
    ("data: {source: {path: x}}\ntrian: {}\n", "unknown key trian"),
    ("data: {source: {path: x}}\ntrain: {epochs: three}\n", "train.epochs: expected int"),
    ("data: {source: {path: x}}\ntrain: {augment: 1}\n", "train.augment: expected bool"),
    ("data: {source: {path: x, colour: red}}\n", "unknown key data.source.colour"),
    ("model: {kind: cnn}\n", "missing key data"),
    ("data: {source: {path: x}}\nmodel: {kind: resnet}\n", "model.kind"),
    ("data: {source: {path: x}}\nmodel: {widths: [8, x]}\n", "model.widths\\[1\\]: expected int"),
    ("data: {source: {path: x, weight: 0.5}}\n", "data.source.weight: only data.extra_training"),
    ("data: {source: {path: x}, extra_training: [{path: y, weight: 0}]}\n", "extra_training\\[0\\].weight: a positive"),
    ("data: {source: {path: x}}\nsplit: {validation: 1.2}\n", "split.validation: expected a fraction"),
    ("data: {source: {path: x}}\nsplit: {validation: 0.6, test: 0.4}\n", "split.validation \\+ split.test"),
    ("data: {source: {path: x}}\ntrain: {epochs: 0}\n", "train.epochs: expected at least 1"),
    ("data: {source: {path: x}}\ntrain: {batch_size: -4}\n", "train.batch_size: expected at least 1"),
    ("data: {source: {path: x}}\ntrain: {fine_tune: {learning_rate: -0.1}}\n", "train.fine_tune.learning_rate"),
    ("data: {source: {path: x}}\nmodel: {dropout: 1.0}\n", "model.dropout: expected a rate in \\[0, 1\\)"),
    ("data: {source: {path: x}}\nmodel: {widths: [8, 16, 32], input_size: 2}\n", "input_size: expected at least 4"),
    ("data: {source: {path: x}}\nmodel: {kind: transfer, input_size: 16}\n", "input_size: expected at least 32"),
    ("data: {source: {path: x}}\nmodel: {kind: transfer, backbone: resnet}\n", "model.backbone: expected one of"),
    ("data: {source: {path: x}}\nmodel: {kind: transfer, weights: gone.h5}\n", "model.weights: no such file"),
    ("data: {source: {path: x}}\nseed: -1\n", "seed: expected a whole number"),
    ("- a\n- list\n", "expected a mapping"),
    ("data: {source: {path: x}\n", "not valid YAML"),
    # PyYAML keeps the last of two equal keys: the first section (here epochs: 2) was dropped unsaid
    ("data: {source: {path: x}}\ntrain: {epochs: 2}\ntrain: {batch_size: 8}\n",
     "run.yaml, line 3: key 'train' is given twice in one section"),
    ("data: {source: {path: x}}\nmodel: {dropout: 0.1, dropout: 0.5}\n", "key 'dropout' is given twice"),
])
def test_bad_configuration_is_refused_with_the_key_named(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(path)
    assert str(refused.value).startswith(str(path)), "the message names the file the value is in"


@pytest.mark.parametrize("overrides, message", [
    ({"train.epochs": "x"}, "train.epochs: expected int"),
    ({"train.epochs.x": 1}, "epochs is not a mapping"),
    ({"train.epochs": 3, "train.bogus": 1}, "unknown key train.bogus"),
    ({"data.sorce.path": "photos"}, "unknown key data.sorce;"),  # a typo in a section's name, below it a key
    ({"model.fine_tune.layers": 3}, "unknown key model.fine_tune;"),  # a key of another section
])
def test_a_bad_override_is_refused_as_an_override_not_as_the_file(tmp_path, overrides, message):
    path = _write(tmp_path, "data: {source: {path: x}}\ntrain: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(path, overrides)
    assert str(path) not in str(refused.value) and str(refused.value).endswith("(given as an override: --set)")


def test_shipped_pipelines_are_valid():
    from pathlib import Path

    from conftest import SHARED_WEIGHTS
    # a user's clone has no ../shared/weights: every other key is still checked
    overrides = {} if SHARED_WEIGHTS.is_file() else {"model.weights": None}
    for path in sorted(Path(__file__).parents[1].joinpath("pipelines").glob("*.yaml")):
        assert load_config(path, overrides).data.source.path


def test_a_configuration_built_in_python_is_checked_when_training_starts(tmp_path):
    import dataclasses

    from imagesentiment.training.cv import cross_validate
    from imagesentiment.training.fit import train

    config = load_config(_write(tmp_path, "data: {source: {path: imgs}}\n"))
    bad = dataclasses.replace(config, train=dataclasses.replace(config.train, learning_rate=-0.01))
    for run in (train, cross_validate):
        with pytest.raises(ConfigError, match="train.learning_rate: expected a rate above 0"):
            run(bad, tmp_path / "run")
    # types too, as a YAML file's: these were TypeErrors and AttributeErrors from deep inside, or (2.5 epochs)
    # a crash in model.fit after the data was read
    for field, value, refusal in (("epochs", "2", "train.epochs: expected int, got str '2'"),
                                  ("epochs", 2.5, "train.epochs: expected int, got float 2.5"),
                                  ("fine_tune", {"epochs": "0"}, "train.fine_tune.epochs: expected int")):
        typed = dataclasses.replace(config, train=dataclasses.replace(config.train, **{field: value}))
        with pytest.raises(ConfigError, match=refusal):
            train(typed, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    built = dataclasses.replace(config, train=dataclasses.replace(config.train, fine_tune={"epochs": 0}))
    assert check_config(built).train.fine_tune.epochs == 0  # a mapping for a section, as in YAML


def test_a_rate_written_without_a_decimal_point_is_a_number(tmp_path):
    """YAML 1.1 reads 3e-3 as a string: it was refused as 'expected float, got str'."""
    config = load_config(_write(tmp_path, "data: {source: {path: x}}\ntrain: {learning_rate: 3e-3}\n"),
                         {"train.fine_tune.learning_rate": "1E-5"})
    assert config.train.learning_rate == 0.003 and config.train.fine_tune.learning_rate == 1e-5
    with pytest.raises(ConfigError, match="train.learning_rate: expected float, got str 'fast'"):
        load_config(_write(tmp_path, "data: {source: {path: x}}\ntrain: {learning_rate: fast}\n"))


def test_the_modules_that_read_plain_files_do_not_start_tensorflow():
    """The configuration, the run directory, the model contract and the predictions table are read by commands
    that need no model (report, the checks before a command starts): importing them starts no TensorFlow."""
    code = ("import sys; import imagesentiment.training.config, imagesentiment.training.run, imagesentiment.contract, "
            "imagesentiment.table.columns, imagesentiment.atomic, imagesentiment.scoring.inputs, imagesentiment.report.html; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_problem_is_listed_at_once_each_at_its_line(tmp_path):
    """A user fixing a configuration met one error a run: now each wrong key comes with the line it is on."""
    path = _write(tmp_path, "data:\n  source: {path: x}\ntrain:\n  epochs: ten\n  batch_sise: 8\n"
                            "model:\n  dropout: 1.5\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    lines = str(refused.value).splitlines()
    assert lines[0] == f"{path}: 2 problems:"  # the types and names first: a value's range is checked after
    assert lines[1].startswith("  line 5: unknown key train.batch_sise;")
    assert lines[2] == "  line 4: train.epochs: expected int, got str 'ten'"
    assert [key for key, _ in refused.value.problems] == ["train.batch_sise", "train.epochs"]
    with pytest.raises(ConfigError) as refused:
        load_config(_write(tmp_path, "data:\n  source: {path: x}\nsplit: {folds: 1}\nmodel:\n  dropout: 1.5\n"),
                    {"train.epochs": 0})
    assert str(refused.value).splitlines()[1:] == [
        "  line 3: split.folds: expected at least 2 folds, got 1",
        "  line 5: model.dropout: expected a rate in [0, 1), got 1.5",
        "  train.epochs: expected at least 1 epoch, got 0 (given as an override: --set)"]


def test_one_problem_names_its_line(tmp_path):
    path = _write(tmp_path, "data: {source: {path: x}}\n\ntrain:\n  learning_rate: fast\n")
    with pytest.raises(ConfigError, match="^" + str(path) + ", line 4: train.learning_rate: expected float"):
        load_config(path)
    missing = _write(tmp_path, "# no data section\nmodel:\n  kind: cnn\n")
    with pytest.raises(ConfigError, match=f"^{missing}: missing key data$"):
        load_config(missing)
