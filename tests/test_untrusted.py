"""Untrusted files (issue 9): a model someone sent, a configuration from the web. Loading one runs
no code from it; a file that is not what it claims gets an error naming it; configurations are
data. Each attack leaves a marker file if any of its code runs: the tests check that none does.

Manifest paths that leave the data root are in test_bad_input.py (and test_sources.py)."""
from __future__ import annotations

import ast
import json
import zipfile
from pathlib import Path

import keras
import pytest
import tensorflow as tf

import imagesentiment
from imagesentiment.training.config import ConfigError, load_config
from imagesentiment.inference import ModelFileError

PACKAGE = Path(imagesentiment.__file__).parent
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "CODE_RAN"


@pytest.fixture
def payload_module(tmp_path, marker, monkeypatch) -> str:
    """An importable module whose import, functions and class all leave the marker."""
    name = f"payload_{tmp_path.name.replace('-', '_')}"
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / f"{name}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
        f"def boom(*args, **kwargs):\n    pathlib.Path({str(marker)!r}).write_text('called')\n"
        f"class Boom:\n    @classmethod\n    def from_config(cls, config):\n"
        f"        pathlib.Path({str(marker)!r}).write_text('built')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    return name


def _small_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="d")(x))


def _with_config(source: Path, target: Path, edit) -> Path:
    """A copy of the .keras archive ``source`` whose config.json went through ``edit``."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def _dense(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


ATTACKS = {
    "activation from another module": lambda c, m: _dense(c)["config"].update(
        activation={"module": m, "class_name": "function", "config": "boom", "registered_name": "function"}),
    "layer class from another module": lambda c, m: _dense(c).update(module=m, class_name="Boom", registered_name=None),
    "model class from another module": lambda c, m: c.update(module=m, class_name="Boom", registered_name=None),
    "os.system as an activation": lambda c, m: _dense(c)["config"].update(
        activation={"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_keras_file_cannot_import_or_call_code(tmp_path, marker, payload_module, attack):
    plain = tmp_path / "plain.keras"
    _small_model().save(plain)
    evil = _with_config(plain, tmp_path / "evil.keras", lambda c: ATTACKS[attack](c, payload_module))
    with pytest.raises(ModelFileError, match=f"{evil}: cannot be loaded as a Keras model"):
        imagesentiment.load(evil)
    assert not marker.exists(), f"code from the file ran: {marker.read_text()}"
    assert isinstance(imagesentiment.load(plain), imagesentiment.inference.KerasPredictor)  # the untouched file loads


def test_a_python_lambda_in_a_keras_file_is_refused_not_run(tmp_path, marker):
    inputs = keras.Input((8, 8, 3))
    write = f"__import__('pathlib').Path({str(marker)!r}).write_text('lambda ran')"
    x = keras.layers.Lambda(eval(f"lambda x: ({write}, x)[1]"))(inputs)  # the attacker's side
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="last_conv")(x))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "lambda.keras")
    marker.unlink()  # building the model ran the lambda once, on the attacker's machine
    with pytest.raises(ModelFileError, match=r"lambda.keras: .*Lambda.*(safe|arbitrary code)"):
        imagesentiment.load(tmp_path / "lambda.keras")
    assert not marker.exists()


def test_the_commands_refuse_such_a_file_by_name(tmp_path, marker, payload_module, capsys):
    from imagesentiment.cli import main

    _small_model().save(tmp_path / "plain.keras")
    (tmp_path / "run").mkdir()
    evil = _with_config(tmp_path / "plain.keras", tmp_path / "run" / "model.keras",
                        lambda c: ATTACKS["layer class from another module"](c, payload_module))
    photo = tmp_path / "photo.png"
    photo.write_bytes(tf.io.encode_png(tf.zeros((8, 8, 3), tf.uint8)).numpy())
    for command in (["predict", str(photo), "--model", str(evil), "--out", str(tmp_path / "p.csv")],
                    ["explain", str(photo), "--model", str(evil), "--out", str(tmp_path / "e")],
                    ["export", str(tmp_path / "run"), "--out", str(tmp_path / "served")],
                    ["evaluate", str(tmp_path / "run"), "--data", str(tmp_path)]):
        assert main(command) == 2, command
        assert f"error: {evil}: cannot be loaded as a Keras model" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "served").exists() and not (tmp_path / "p.csv").exists()


def _saved_module(folder: Path) -> Path:
    module = tf.Module()
    module.f = tf.function(lambda x: x * 2, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(folder), signatures={"other": module.f})
    return folder


def _tflite() -> bytes:
    """A small valid TFLite flatbuffer."""
    def model(images):
        return {"probabilities": tf.nn.softmax(tf.reduce_mean(images, [1, 2]))}

    function = tf.function(model, input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="images")])
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], tf.Module()).convert()


NOT_MODELS = {  # what is written, where -> what the error says
    "text named .keras": ("m.keras", b"not a model", r"not a Keras model file"),
    "zip without a model": ("m.keras", None, r"cannot be loaded as a Keras model"),
    "run folder with a bad model.keras": ("run/model.keras", b"PK\x03\x04broken", r"not a Keras model file"),
    "run folder with bad classes.json": ("run/classes.json", b"{'sad'", r"classes.json: not a JSON list"),
    "text named .tflite": ("m.tflite", b"not a model either", r"not a TFLite model \(no TFL3 identifier"),
    "empty .tflite": ("m.tflite", b"", r"not a TFLite model \(no TFL3 identifier; empty\)"),
    "truncated .tflite": ("m.tflite", "half", r"not a usable TFLite model \(ValueError"),
    "garbage saved_model.pb": ("sm/saved_model.pb", b"\x08garbage", r"sm: not a readable SavedModel"),
    "SavedModel of something else": ("other", "savedmodel", r"without the 'predict_images' signature"),
}


@pytest.mark.parametrize("case", NOT_MODELS)
def test_a_file_that_is_not_a_model_gets_an_error_naming_it(tmp_path, case):
    relative, content, message = NOT_MODELS[case]
    target = tmp_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("readme.txt", "hello")
    elif content == "half":
        target.write_bytes(_tflite()[:-64])
    elif content == "savedmodel":
        _saved_module(target)
    else:
        target.write_bytes(content)
    if target.name == "classes.json":
        _small_model().save(target.parent / "model.keras")
    opened = target.parent if target.parent.name in ("run", "sm") else target
    with pytest.raises(ModelFileError, match=message) as info:
        imagesentiment.load(opened)
    assert str(opened) in str(info.value)


YAML_ATTACKS = [
    "model: !!python/object/apply:os.system ['touch {marker}']",
    "seed: !!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "name: !!python/name:os.system",
]


@pytest.mark.parametrize("attack", YAML_ATTACKS)
def test_a_configuration_is_data(tmp_path, marker, attack, capsys):
    from imagesentiment.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("data: {source: {path: photos}}\n" + attack.format(marker=marker) + "\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(config)
    config.write_text("data: {source: {path: photos}}\n")
    value = attack.split(": ", 1)[1].format(marker=marker)
    for command in (["train", str(config), "--set", f"seed={value}"], ["check", str(tmp_path), "-o", f"x={value}"]):
        assert main(command) == 2
        assert "is not a plain YAML scalar" in capsys.readouterr().err
    assert not marker.exists()


def test_names_in_a_configuration_are_looked_up_in_fixed_tables(tmp_path, synthetic_root, capsys):
    """A format, backbone or option named by the file is one of a fixed set, never imported by name."""
    from imagesentiment.cli import main

    cases = {
        "data: {source: {path: %s, format: os.system}}": "unknown data format 'os.system'; choose one of",
        "data: {source: {path: %s, options: {__class__: x}}}": "unknown options ['__class__']",
        "data: {source: {path: %s}}\nmodel: {kind: subprocess}": "model.kind: expected one of 'cnn', 'sepnet', 'transfer'",
        "data: {source: {path: %s}}\nmodel: {kind: transfer, backbone: os.system}": "model.backbone: expected one of",
    }
    for text, message in cases.items():
        config = tmp_path / "config.yaml"
        config.write_text(text % synthetic_root + "\ntrain: {epochs: 1}\n")
        assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
        assert message in capsys.readouterr().err, text
        assert not (tmp_path / "run" / "model.keras").exists()


FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
                     "importlib", "runpy", "pickletools", "torch"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_METHODS = {"read_pickle", "unsafe_load", "full_load", "enable_unsafe_deserialization", "system", "popen",
                     "import_module", "load_module"}


def test_the_package_has_no_pickle_no_eval_and_loads_models_in_safe_mode():
    """Read the package's source: what would run code from a file is absent (a new use fails this test)."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            line = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                problems += [f"{line} imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
            if isinstance(node, ast.Attribute) and node.attr in ("Loader", "UnsafeLoader", "FullLoader"):
                problems.append(f"{line} uses yaml.{node.attr} (only safe_load)")
            if not isinstance(node, ast.Call):
                continue
            func, keywords = node.func, {k.arg: k.value for k in node.keywords}
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                problems.append(f"{line} calls {func.id}")
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if name in FORBIDDEN_METHODS or (name == "load" and owner == "yaml"):
                problems.append(f"{line} calls {owner}.{name}")
            pickled = keywords.get("allow_pickle")
            if name == "load" and isinstance(pickled, ast.Constant) and pickled.value:
                problems.append(f"{line} loads with allow_pickle=True")
            safe = keywords.get("safe_mode")
            if name == "load_model" and not (isinstance(safe, ast.Constant) and safe.value is True):
                problems.append(f"{line} load_model without safe_mode=True")
    assert not problems, "\n".join(problems)
