"""Off TensorFlow, what needs TensorFlow says so: one clear error naming the
backend (and, where TensorFlow is missing, that it is), before anything loads.

These run in the JAX run of the suite (tests/test_jax_backend.py: Keras on
JAX, TensorFlow not importable); on the TensorFlow backend they are skipped.
"""

import keras
import pytest

import keras_resnets
from keras_resnets.cli import main
from keras_resnets.utils.backend import BackendError, TensorFlowNeededError, tensorflow_installed

BACKEND = keras.backend.backend()
pytestmark = [
    pytest.mark.backends,
    pytest.mark.skipif(BACKEND == "tensorflow", reason="the errors of the other backends"),
]


def _refused(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.skipif(tensorflow_installed(), reason="TensorFlow is installed here")
def test_without_tensorflow_train_and_the_data_say_they_need_it(capsys):
    err = _refused(capsys, "train", "--model", "resnet20", "--data", "digits")
    assert err.startswith("keras-resnets train: error: keras-resnets train needs TensorFlow, which is not "
                          f"installed in this environment (Keras backend: '{BACKEND}')")
    with pytest.raises(TensorFlowNeededError, match=r"keras_resnets\.data \(tf\.data pipelines.*needs TensorFlow"):
        import keras_resnets.data  # noqa: F401


def test_export_and_tune_name_the_backend(capsys, tmp_path):
    model = tmp_path / "m.keras"
    keras_resnets.ResNet20(classes=10).save(model)
    err = _refused(capsys, "export", str(model))
    assert f"keras-resnets export runs on TensorFlow only, and Keras runs on the '{BACKEND}' backend" in err
    assert "KERAS_BACKEND=tensorflow" in err
    err = _refused(capsys, "tune", "--data", "digits")
    assert f"keras-resnets tune runs on TensorFlow only, and Keras runs on the '{BACKEND}' backend" in err
    # The library calls too, before anything is written.
    from keras_resnets.export import tflite

    with pytest.raises(BackendError, match=rf"Export .* runs on TensorFlow only, .* '{BACKEND}' backend"):
        tflite(keras.saving.load_model(model), tmp_path / "m.tflite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]


@pytest.mark.parametrize("strategy", ["mirrored", "multiworker", "tpu"])
def test_tf_distribute_strategies_are_refused(strategy):
    from keras_resnets.training.settings import check_strategy_backend

    with pytest.raises(BackendError, match=rf"strategy='{strategy}' \(tf\.distribute\) runs on TensorFlow only, "
                       rf"and Keras runs on the '{BACKEND}' backend.*keras\.distribution\.DataParallel"):
        check_strategy_backend(strategy)
    check_strategy_backend("none")  # one device: allowed
