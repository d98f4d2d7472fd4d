"""Cluster coherence and projections against scikit-learn (an independent implementation:
Debian's python3-sklearn) and numpy's SVD (docs/metrics.md)."""

import numpy as np
import pytest

import mosaic
from mosaic import cluster

sk_metrics = pytest.importorskip("sklearn.metrics", reason="python3-sklearn is not installed")
from sklearn.manifold import trustworthiness  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402


def blobs(n=150, d=12, groups=4, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(groups, d)) * 2.0
    g = rng.integers(0, groups, size=n).astype(np.int32)
    return (centers[g] + spread * rng.normal(size=(n, d))).astype(np.float32), g


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("spread", [0.5, 3.0])
def test_silhouette_equals_sklearn(metric, spread):
    x, g = blobs(spread=spread)
    ref = sk_metrics.silhouette_score(x.astype(np.float64), g, metric=metric)
    assert cluster.silhouette(x, g, metric) == pytest.approx(ref, abs=1e-9)


def test_silhouette_singletons_zero_rows_and_left_out_samples():
    x, g = blobs(n=40, spread=2.0, seed=1)
    g[3] = 9  # a group of one sample scores 0
    x[5] = 0.0  # a zero row: cosine similarity 0 to everything
    ref = sk_metrics.silhouette_score(x.astype(np.float64), g, metric="cosine")
    assert cluster.silhouette(x, g, "cosine") == pytest.approx(ref, abs=1e-9)
    keep = np.arange(40) % 3 != 0
    g2 = g.copy()
    g2[~keep] = -1
    ref = sk_metrics.silhouette_score(x[keep].astype(np.float64), g[keep], metric="euclidean")
    assert cluster.silhouette(x, g2, "euclidean") == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_purity_equals_neighbours_from_sklearn(metric):
    x, g = blobs(spread=3.0, seed=2)  # overlapping: purity well below 1
    k = 7
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute")
    _, idx = nn.fit(x.astype(np.float64)).kneighbors(x.astype(np.float64))
    assert (idx[:, 0] == np.arange(len(x))).all()  # (no exact ties in this data)
    ref = float(np.mean([(g[idx[i, 1:]] == g[i]).mean() for i in range(len(x))]))
    got = cluster.knn_purity(x, g, k, metric)
    assert 0.3 < ref < 0.99
    assert got == pytest.approx(ref, abs=1e-12)


def test_group_by_label_takes_the_rarest_positive():
    y = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 0, 0], [0, 1, 1]], np.uint8)
    # positives per class: 3, 2, 2 -> rarest of row 0 is class 1; row 2: class 2;
    # row 4: classes 1 and 2 tie (2 each) -> the lower index
    assert cluster.group_by_label(y).tolist() == [1, 0, 2, -1, 1]


@pytest.mark.parametrize("n,d,k", [(80, 10, 3), (12, 40, 2)])  # covariance and Gram paths
def test_pca_equals_svd(n, d, k):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(n, d)) * np.linspace(3, 0.5, d)).astype(np.float32)
    got, var = cluster.pca(x, k)
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:k].T
    for j in range(k):  # the sign convention: the largest coordinate of the axis positive
        if vt[j][np.argmax(np.abs(vt[j]))] < 0:
            ref[:, j] = -ref[:, j]
    assert np.abs(got - ref).max() < 1e-4 * np.abs(ref).max()
    assert var == pytest.approx(s[:k] ** 2 / (n - 1), rel=1e-9)


def test_tsne_keeps_neighbourhoods_of_separated_clusters():
    x, g = blobs(n=120, d=16, spread=0.7, seed=4)
    y = cluster.tsne(x, perplexity=20, iterations=500)
    assert y.shape == (120, 2) and np.isfinite(y).all()
    assert trustworthiness(x, y, n_neighbors=5) > 0.9
    # the classes stay apart in the picture
    assert sk_metrics.silhouette_score(y, g) > 0.5
    assert np.array_equal(y, cluster.tsne(x, perplexity=20, iterations=500))  # deterministic


def test_errors_are_clear():
    x, g = blobs(n=10)
    with pytest.raises(mosaic.InvalidArgumentError, match="groups"):
        cluster.silhouette(x, np.zeros(10, np.int32))
    with pytest.raises(mosaic.InvalidArgumentError, match="k = 10"):
        cluster.knn_purity(x, g, k=10)
    x[2, 3] = np.nan
    with pytest.raises(mosaic.NumericalError, match=r"x\[2\]\[3\]"):
        cluster.pca(x)
    with pytest.raises(ValueError):
        cluster.silhouette(x, g, "manhattan")
    with pytest.raises(mosaic.InvalidArgumentError, match="perplexity"):
        cluster.tsne(blobs(n=10)[0], perplexity=10)
