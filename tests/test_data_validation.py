"""Bad input gets a clear error before any work starts, and the user's arrays are never modified."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.core.data import SegmentationData, painted_slice_axis
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.events import Failed
from napari_contrastseg.core.trainer import train


def _image():
    return np.random.default_rng(0).random((20, 24)).astype(np.float32)


def _labels(*classes):
    labels = np.zeros((20, 24), np.int32)
    for i, c in enumerate(classes):
        labels[2 + 3 * i, 2:10] = c
    return labels


@pytest.mark.parametrize(
    ("image", "labels", "kwargs", "message"),
    [
        (_image(), _labels(), {}, "Nothing is painted"),
        (_image(), _labels(1, 1), {}, "at least two classes"),
        (_image(), np.zeros((20, 25), np.uint8), {}, "shape"),
        (np.where(_image() > 0.5, np.nan, 1.0), _labels(1, 2), {}, "NaN"),
        (np.where(_image() > 0.5, np.inf, 1.0), _labels(1, 2), {}, "infinite"),
        (np.ones((20, 24), np.float32), _labels(1, 2), {}, "constant"),
        (np.random.rand(2, 2, 20, 24), np.zeros((2, 2, 20, 24), np.uint8), {}, "has 4 spatial axes"),
        (np.random.rand(20), np.zeros(20, np.uint8), {}, "has 1 spatial axes"),
        (_image(), _labels(1, 2).astype(np.float32) + 0.5, {}, "fractional"),
        (_image(), _labels(1, 2).astype(np.float32), {}, "floating point"),
        (_image(), _labels(1, 2) * -1, {}, "negative"),
        (_image(), _labels(1, 300), {}, "at most 255"),
        (_image(), _labels(1, 3), {"class_names": ["background", "cell"]}, "only 2 class names"),
        (_image().astype(np.complex64), _labels(1, 2), {}, "real-valued"),
        (np.random.rand(3, 20, 24), _labels(1, 2), {"channel_axis": 5}, "channel_axis 5"),
        (np.random.rand(20, 24, 6), _labels(1, 2), {}, "which axis holds the channels"),  # 6: not found by itself
    ],
)
def test_bad_input_is_refused_with_a_plain_message(image, labels, kwargs, message):
    data = SegmentationData(image, labels, **kwargs)
    with pytest.raises(InputError, match=message):
        data.validate()
    events = list(train(data))  # front ends see the same message as a Failed event, never an exception
    assert len(events) == 1 and isinstance(events[0], Failed) and message in events[0].message


def test_validation_leaves_arrays_untouched():
    image, labels = _image(), _labels(1, 2)
    before = (image.copy(), labels.copy())
    SegmentationData(image, labels).validate()
    assert np.array_equal(image, before[0]) and np.array_equal(labels, before[1])


def test_multichannel_image_with_channel_axis_is_accepted():
    image = np.random.default_rng(0).random((20, 24, 3))
    data = SegmentationData(image, _labels(1, 2), channel_axis=-1).validate()
    assert data.channels_first.shape == (3, 20, 24)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_painted_slice_axis_finds_the_axis_painted_along(axis):
    labels = np.zeros((10, 12, 14), np.uint8)
    index = [slice(None)] * 3
    index[axis] = [2, 7]
    labels[tuple(index)] = 1
    assert painted_slice_axis(labels) == axis
