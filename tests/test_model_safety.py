"""Model folders are untrusted: every card field is checked, graphs stay inside their folder, what
runs is exactly what was hashed, and a graph that does not fit is a clear error (exit 2)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from engine.app.cli import main
from engine.errors import InputError
from engine.models import load_model, shipped_models
from engine.runtime import sessions

from .conftest import square_mask, textured

SHIPPED = shipped_models()["simnet-small"]


@pytest.fixture
def model(tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(SHIPPED, folder)
    sessions._sessions.clear()
    yield folder
    sessions._sessions.clear()


def _card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text())


def _write_card(folder: Path, card) -> None:
    (folder / "card.json").write_text(json.dumps(card) if not isinstance(card, str) else card)


def _cli(tmp_path: Path, model: Path) -> list[str]:
    cv2.imwrite(str(tmp_path / "p.png"), (textured(40, 50) * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "s.png"), (square_mask(40, 50, 5, 5, 12) * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "t.png"), (square_mask(40, 50, 30, 10, 12) * 255).astype(np.uint8))
    return ["--quiet", "manipulate", str(tmp_path / "p.png"), "--source-mask", str(tmp_path / "s.png"),
            "--target-mask", str(tmp_path / "t.png"), "-o", str(tmp_path / "out.png"), "--model", str(model)]


def _edit(card: dict, change) -> dict:
    change(card)
    return card


CARD_DAMAGE = [
    ("sha256 as a list", lambda c: c.update(sha256=list(c["sha256"].values())), "'graphs' and 'sha256' must be objects"),
    ("graphs as text", lambda c: c.update(graphs="keypoints.onnx"), "'graphs' and 'sha256' must be objects"),
    ("no config", lambda c: c.pop("config"), "it has no 'config'"),
    ("work size 10^9", lambda c: c["config"].update(work_size=10**9), "config.work_size must be a whole number"),
    ("work size -5", lambda c: c["config"].update(work_size=-5), "config.work_size must be a whole number"),
    ("keypoints 10^6", lambda c: c["config"].update(keypoints=10**6), "config.keypoints must be a whole number"),
    ("a hash that is no hash", lambda c: c["sha256"].update({"keypoints.onnx": 7}), "no sha256 for keypoints.onnx"),
    ("a graph path out of the folder", lambda c: c["graphs"]["keypoints"].update(fp32="../../../../etc/hostname"),
     "must be a plain file name in the model folder"),
    ("an absolute graph path", lambda c: c["graphs"]["transport"].update(fp32="/etc/hostname"), "plain file name"),
]


@pytest.mark.parametrize("what, change, message", CARD_DAMAGE, ids=[c[0] for c in CARD_DAMAGE])
def test_damaged_cards_are_refused_with_what_is_wrong(tmp_path, capsys, model, what, change, message):
    _write_card(model, _edit(_card(model), change))
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        sessions.read_card(model)
    assert main(_cli(tmp_path, model)) == 2
    assert message in capsys.readouterr().err


def test_a_card_pointing_out_of_its_folder_with_a_matching_hash_reads_nothing_there(tmp_path, model):
    outside = tmp_path / "outside.onnx"
    shutil.copy(model / "keypoints.onnx", outside)  # a real graph, and its real hash
    card = _card(model)
    card["graphs"]["keypoints"]["fp32"] = "../outside.onnx"
    card["sha256"]["../outside.onnx"] = sessions.sha256(outside)
    _write_card(model, card)
    with pytest.raises(InputError, match="plain file name"):
        sessions.load_graphs(model, "cpu")


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "damaged"),
    ("{" + '"a": 1, ' * 200_000 + '"b": 2}', "over"),
    ("\"just text\"", "not a SIM-Net model card"),
])
def test_cards_that_are_no_cards_are_refused(model, text, message):
    _write_card(model, text)
    with pytest.raises(InputError, match=message):
        sessions.read_card(model)


def test_a_card_whose_sizes_disagree_with_its_graphs_is_refused(model):
    card = _card(model)
    card["config"]["keypoints"] = card["config"]["keypoints"] + 1
    _write_card(model, card)
    with pytest.raises(InputError, match="keypoint.* graph of .* does not fit its card"):
        sessions.load_graphs(model, "cpu")


def test_a_graph_with_the_wrong_inputs_is_refused(model):
    card = _card(model)
    card["graphs"]["keypoints"]["fp32"] = "transport.onnx"  # a real graph with a real hash, in the wrong role
    _write_card(model, card)
    with pytest.raises(InputError, match="keypoints graph of .* does not fit its card: its inputs are"):
        sessions.load_graphs(model, "cpu")


def test_a_graph_that_fails_while_it_runs_is_a_clear_error(tmp_path, capsys, model):
    backend = load_model(str(model), "cpu").backend
    wrong = np.zeros((1, 1, 7, 7), np.float32)  # not the working size: ONNX Runtime refuses it
    with pytest.raises(InputError, match="keypoint graph failed while it ran"):
        backend.keypoints(wrong, np.zeros((1, 2, 3), np.float32))


def test_graphs_with_external_data_are_refused_even_with_matching_hashes(model):
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(model / "keypoints.onnx"))
    onnx.save_model(graph, str(model / "keypoints.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="keypoints.data", size_threshold=0)
    card = _card(model)
    card["sha256"]["keypoints.onnx"] = sessions.sha256(model / "keypoints.onnx")  # the graph file's own hash matches
    _write_card(model, card)
    with pytest.raises(InputError, match="external data"):
        sessions.load_graphs(model, "cpu")
    data = bytearray((model / "keypoints.data").read_bytes())
    data[100] ^= 0xFF  # tampered weights that no hash covers would otherwise run
    (model / "keypoints.data").write_bytes(bytes(data))
    with pytest.raises(InputError, match="external data"):
        sessions.load_graphs(model, "cpu")


def test_the_shipped_graphs_load_and_hold_no_external_data():
    card = sessions.read_card(SHIPPED)
    for files in card["graphs"].values():
        for precision in sessions.PRECISIONS:
            assert not sessions.uses_external_data((SHIPPED / files[precision]).read_bytes())


def test_bytes_that_are_no_protobuf_are_refused():
    with pytest.raises(InputError, match="not a well-formed ONNX graph"):
        sessions.uses_external_data(b"\x0a\xff\xff\xff\xff\x0f")  # a field longer than the data


@pytest.mark.parametrize("name, message", [("x" * 10_000, "1 to 1024 characters"), ("a\0b", "1 to 1024 characters"),
                                           ("/" + "d" * 300 + "/" + "e" * 300, "cannot look for a model at .*File name too long")])
def test_model_names_the_system_cannot_look_up_are_clear_errors(name, message):
    with pytest.raises(InputError, match=message):
        load_model(name)
