"""The perceptual network, in real torch with the real shipped weights (skipped without them)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stlpips_pytorch")

from engine.simnet.perceptual import PerceptualNet, gram_matrices, to_tensor  # noqa: E402

from .conftest import textured  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return PerceptualNet()


def test_features_have_vgg_shapes(net):
    with torch.no_grad():
        features = net(to_tensor(textured(64, 96)))
    assert [f.shape[1] for f in features] == [64, 128, 256, 512, 512]
    assert features[0].shape[2:] == (64, 96) and features[4].shape[2] < 8


def test_distance_grows_with_distortion(net):
    import cv2

    image = textured(96, 128, seed=1)
    rng = np.random.default_rng(0)
    noise = rng.random(image.shape, dtype=np.float32)
    image = 0.7 * image + 0.3 * cv2.GaussianBlur(noise, (0, 0), 1.0)
    with torch.no_grad():
        d = lambda other: float(net.distance(to_tensor(image), to_tensor(other))[0])  # noqa: E731
        same, shifted, blurred, other = d(image), d(np.roll(image, 1, axis=1)), d(cv2.blur(image, (7, 7))), d(noise)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert same < shifted < blurred < other


def test_gram_matrices_are_symmetric_and_normalised(net):
    with torch.no_grad():
        grams = gram_matrices(net(to_tensor(textured(32, 32))))
    for gram in grams:
        assert torch.allclose(gram, gram.transpose(1, 2))
        assert float(gram.diagonal(dim1=1, dim2=2).min()) >= 0
