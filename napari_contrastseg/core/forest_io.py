"""A fitted random forest as named arrays (to live in the model's safetensors file) and back, never pickled.

Each tree is its node table (one array per field of scikit-learn's node record: children, split feature and
threshold, ...) and its ``(nodes, 1, classes)`` leaf values; the forest adds the class values it learnt. Reading
rebuilds scikit-learn's trees from those arrays only, so a model file cannot carry code.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ModelFileError

PREFIX = "forest."


def forest_tensors(forest) -> dict[str, torch.Tensor]:
    """``forest.*`` tensors of a fitted :class:`sklearn.ensemble.RandomForestClassifier` (one output)."""
    out = {f"{PREFIX}classes": torch.from_numpy(np.asarray(forest.classes_, np.int64))}
    for t, estimator in enumerate(forest.estimators_):
        state = estimator.tree_.__getstate__()
        nodes = state["nodes"]
        for name in nodes.dtype.names:
            out[f"{PREFIX}{t}.{name}"] = torch.from_numpy(np.ascontiguousarray(nodes[name]))
        out[f"{PREFIX}{t}.values"] = torch.from_numpy(np.ascontiguousarray(state["values"]))
        out[f"{PREFIX}{t}.max_depth"] = torch.tensor(int(state["max_depth"]))
    return out


def split_forest(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(network tensors, forest tensors)`` of a model file's tensors."""
    forest = {k: v for k, v in tensors.items() if k.startswith(PREFIX)}
    return {k: v for k, v in tensors.items() if not k.startswith(PREFIX)}, forest


def forest_from_tensors(tensors: dict[str, torch.Tensor], n_features: int, n_classes: int):
    """The :class:`~sklearn.ensemble.RandomForestClassifier` that :func:`forest_tensors` wrote, able to predict
    ``(N, n_features)`` pixels as class values among 1..``n_classes``; :class:`ModelFileError` when the arrays do
    not describe such a forest (every node link, split feature, threshold and leaf value is checked first: the
    tree code trusts them)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.tree._tree import Tree

    arrays = {k[len(PREFIX) :]: v.numpy() for k, v in tensors.items()}
    try:
        classes = arrays.pop("classes")
        count = len({k.split(".")[0] for k in arrays})
        _check_classes(classes, n_classes, count)
        estimators = []
        for t in range(count):
            tree = Tree(n_features, np.array([len(classes)], np.intp), 1)
            dtype = tree.__getstate__()["nodes"].dtype
            values = arrays[f"{t}.values"]
            nodes = np.zeros(values.shape[0], dtype)
            for name in dtype.names:  # fields of other scikit-learn versions' nodes (e.g. missing values): 0
                if name in REQUIRED or f"{t}.{name}" in arrays:
                    nodes[name] = arrays[f"{t}.{name}"]
            _check_tree(nodes, values, n_features, len(classes))
            tree.__setstate__({"max_depth": int(arrays[f"{t}.max_depth"]), "node_count": len(nodes),
                               "nodes": nodes, "values": values.astype(np.float64)})  # fmt: skip
            estimators.append(_fitted(DecisionTreeClassifier(), tree, classes, n_features))
    except (KeyError, ValueError, TypeError) as err:
        raise ModelFileError(f"The model file's forest is incomplete or damaged ({err}).") from err
    forest = _fitted(RandomForestClassifier(n_estimators=count, n_jobs=torch.get_num_threads()), None, classes,
                     n_features)  # fmt: skip
    forest.estimators_ = estimators
    return forest


#: node fields every tree needs; others default to 0
REQUIRED = ("left_child", "right_child", "feature", "threshold")


def _check_classes(classes: np.ndarray, n_classes: int, trees: int) -> None:
    if trees < 1 or classes.ndim != 1 or not len(classes) or len(np.unique(classes)) != len(classes):
        raise ValueError("no trees, or class values missing or repeated")
    if classes.min() < 1 or classes.max() > n_classes:
        raise ValueError(f"class values must lie in 1..{n_classes}")


def _check_tree(nodes: np.ndarray, values: np.ndarray, n_features: int, n_classes: int) -> None:
    """Every link points forward within the tree (so no loop and no read outside it), leaves have none, every split
    uses an existing feature and a finite threshold, and the leaf values are finite ``(nodes, 1, n_classes)``."""
    count, index = len(nodes), np.arange(len(nodes))
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == -1
    split = ~leaf
    if not count or values.shape != (count, 1, n_classes) or not np.isfinite(values).all():
        raise ValueError("leaf values of the wrong shape or not finite")
    if (right[leaf] != -1).any() or (left[split] <= index[split]).any() or (right[split] <= index[split]).any():
        raise ValueError("node links that do not point forward")
    if (left[split] >= count).any() or (right[split] >= count).any():
        raise ValueError("node links outside the tree")
    feature, threshold = nodes["feature"][split], nodes["threshold"][split]
    if (feature < 0).any() or (feature >= n_features).any() or not np.isfinite(threshold).all():
        raise ValueError(f"split features outside 0..{n_features - 1} or thresholds not finite")


def _fitted(estimator, tree, classes: np.ndarray, n_features: int):
    """``estimator`` with the attributes scikit-learn's fitted classifiers carry (one output)."""
    estimator.classes_, estimator.n_classes_, estimator.n_outputs_ = classes, len(classes), 1
    estimator.n_features_in_ = n_features
    if tree is not None:
        estimator.tree_, estimator.max_features_ = tree, n_features
    return estimator
