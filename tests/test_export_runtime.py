"""Export (parity, card, fp16) and the ONNX Runtime side of the engine, on a tiny checkpoint."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from engine.app.cli import main
from engine.edit import Edit
from engine.errors import InputError
from engine.models import load_model
from engine.models.learned import LearnedModel
from engine.pipeline import run
from engine.runtime import sessions
from engine.simnet.backend import TorchBackend
from engine.simnet.train import TrainOptions, train
from export.onnx_export import FP32_TOLERANCE, export_checkpoint

from .conftest import square_mask, textured
from .simnet_helpers import tiny_config, write_training_folder

# Engine results from the ONNX graphs and from the PyTorch checkpoint agree this closely: the
# graphs agree to ~1e-5, and a rare thresholded decision (a vacated cell at the edge) may flip.
ENGINE_MAX_DIFFERENCE = 5e-3
ENGINE_MEAN_DIFFERENCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = write_training_folder(root / "data")
    train(TrainOptions(data=data, out=root / "run", steps=3, config=tiny_config(), perceptual=False, quiet=True))
    checkpoint = root / "run" / "checkpoint.pt"
    card = export_checkpoint(checkpoint, root / "model", training={"command": "test"}, log=lambda m: None)
    return checkpoint, root / "model", card


def _copy(model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model, target)
    sessions._sessions.clear()
    return target


def test_export_writes_graphs_card_and_parity(exported):
    _, model, card = exported
    assert sorted(p.name for p in model.iterdir()) == [
        "card.json", "keypoints.fp16.onnx", "keypoints.onnx", "transport.fp16.onnx", "transport.onnx",
    ]
    assert card["opset"] >= 17 and card["preset"] == "tiny" and card["training"] == {"command": "test"}
    for graph in ("keypoints", "transport"):
        assert card["parity"][graph]["fp32_max_abs_error"] <= FP32_TOLERANCE
        fp16 = card["parity"][graph]["fp16_max_abs_error"]
        assert isinstance(fp16, str) or fp16 < 0.1  # measured where the CPU can run fp16
    assert set(card["sha256"]) == {"keypoints.onnx", "keypoints.fp16.onnx", "transport.onnx", "transport.fp16.onnx"}
    assert card["graphs"]["transport"]["outputs"]["weights"] == ["batch", 5, 32, 32]  # identity, prior, 3 keypoints
    assert card["training_data"]["artworks"] == ["art0", "art1"]
    assert json.loads((model / "card.json").read_text()) == card


def test_dynamic_batch(exported):
    _, model, _ = exported
    graphs = sessions.load_graphs(model, "cpu")
    for batch in (1, 5):
        priors = np.tile(np.eye(2, 3, dtype=np.float32), (batch, 1, 1))
        kp, jac = graphs.keypoints.run(None, {"masks": np.random.rand(batch, 1, 32, 32).astype(np.float32), "priors": priors})
        assert kp.shape == (batch, 3, 2) and jac.shape == (batch, 3, 2, 2)


def _scene():
    exemplar = textured(64, 80)
    source = square_mask(64, 80, 10, 12, 20)
    target = square_mask(64, 80, 40, 30, 22)
    return exemplar, source, target


def test_engine_from_onnx_matches_engine_from_pytorch(exported):
    checkpoint, model, _ = exported
    exemplar, source, target = _scene()
    labels_src, labels_tgt = source.astype(np.int32), target.astype(np.int32)
    onnx_result = run(exemplar, Edit(labels_src, labels_tgt), LearnedModel("m", model, "cpu")).pixels
    torch_result = run(exemplar, Edit(labels_src, labels_tgt), LearnedModel("m", model, backend=TorchBackend(checkpoint))).pixels
    difference = np.abs(onnx_result - torch_result)
    assert difference.max() < ENGINE_MAX_DIFFERENCE and difference.mean() < ENGINE_MEAN_DIFFERENCE


def test_cuda_requested_without_a_gpu_falls_back_with_a_message(exported, tmp_path):
    _, model, _ = exported
    model = _copy(model, tmp_path)
    cpu = sessions.load_graphs(model, "cpu")
    asked = sessions.load_graphs(model, "cuda")
    if asked.on_gpu:
        pytest.skip("this machine has a working CUDA provider")
    assert asked.provider == "CPUExecutionProvider" and asked.precision == "fp32"
    assert "CUDA was asked for but is not usable" in asked.note
    exemplar, source, target = _scene()
    a = run(exemplar, Edit(source.astype(np.int32), target.astype(np.int32)), LearnedModel("m", model, "cuda")).pixels
    b = run(exemplar, Edit(source.astype(np.int32), target.astype(np.int32)), LearnedModel("m", model, "cpu")).pixels
    assert np.array_equal(a, b) and cpu.provider == "CPUExecutionProvider"


def test_provider_order():
    available = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert sessions.choose_providers("auto", available) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert sessions.choose_providers("cpu", available) == ["CPUExecutionProvider"]
    assert sessions.choose_providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match="unknown device"):
        sessions.choose_providers("tpu", available)


def test_corrupt_model_file_is_a_clear_error(exported, tmp_path):
    _, model, _ = exported
    model = _copy(model, tmp_path)
    data = bytearray((model / "transport.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model / "transport.onnx").write_bytes(bytes(data))
    with pytest.raises(InputError, match="transport.onnx is damaged"):
        sessions.load_graphs(model, "cpu")
    (model / "transport.onnx").write_bytes(bytes(data[:1000]))  # truncated
    with pytest.raises(InputError, match="damaged"):
        sessions.load_graphs(model, "cpu")


def test_card_whose_hash_does_not_match_is_refused(exported, tmp_path):
    _, model, _ = exported
    model = _copy(model, tmp_path)
    card = json.loads((model / "card.json").read_text())
    card["sha256"]["keypoints.onnx"] = "0" * 64
    (model / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="keypoints.onnx is damaged"):
        sessions.load_graphs(model, "cpu")
    (model / "card.json").write_text("{ not json")
    with pytest.raises(InputError, match="card.json is damaged"):
        sessions.read_card(model)


def test_a_model_of_an_earlier_format_is_refused_with_what_to_do(exported, tmp_path):
    _, model, _ = exported
    model = _copy(model, tmp_path)
    card = json.loads((model / "card.json").read_text())
    card["format"] = 1  # graphs without priors
    (model / "card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="format 1.*export its checkpoint again"):
        sessions.read_card(model)


def test_a_model_folder_can_be_named_by_path(exported, tmp_path):
    _, model, _ = exported
    assert isinstance(load_model(str(model)), LearnedModel)
    with pytest.raises(InputError, match="unknown model"):
        load_model(str(tmp_path / "nothing"))


def test_cli_export_and_doctor(exported, tmp_path, capsys):
    checkpoint, _, _ = exported
    assert main(["--quiet", "export", str(checkpoint), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "card.json").exists()
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "out2")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    assert main(["export", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "out3")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "CPUExecutionProvider" in out and out.strip().splitlines()[-1].startswith("verdict:")
    assert code == (0 if "verdict: ready" in out else 2)
