#!/usr/bin/env bash
# cluster.sh MOSAIC LIBMOSAIC WORKDIR — `mosaic eval --protocol cluster` on a small
# synthetic set (docs/metrics.md, "Cluster coherence"): the silhouette and kNN purity in
# its JSON equal scikit-learn's on the embeddings `mosaic embed` writes, grouped by each
# sample's rarest label computed here in NumPy from the dataset's labels (Python
# bindings); the projection TSV has a row per sample, the SVG a point per sample.
# Exit 77 without python3-sklearn.
set -uo pipefail
mosaic=$1
export MOSAIC_LIBRARY=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c "import sklearn" 2>/dev/null; then
  echo "cluster.sh: skipped: python3-sklearn is not installed (scripts/install-deps.sh)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE
set -e
"$mosaic" synth data --n 150 --seed 5 >/dev/null
"$mosaic" train --data data --encoder tiny --max-steps 15 --batch 16 --out m.safetensors \
  --progress none --no-validate --seed 2 >/dev/null
"$mosaic" embed --model m.safetensors --data data --split test --out e.npy --progress none \
  >/dev/null
"$mosaic" eval --model m.safetensors --data data --split test --protocol cluster --k 5 \
  --projection p.tsv --method pca --json r.json --progress none >/dev/null
set +e
PYTHONPATH="$root/bindings/python" /usr/bin/python3 - <<'PY'
import json
import numpy as np
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
import mosaic

r = json.load(open("r.json"))
e = np.load("e.npy").astype(np.float64)
with mosaic.Dataset("data", "bigearthnet-v2", split="test") as ds:
    y = np.array([ds[i]["labels"] for i in range(len(ds))])
    ids = ds.sample_ids()
assert open("e.ids.txt").read().split() == ids
count = y.sum(axis=0)
group = np.array([min(np.flatnonzero(row), key=lambda k: (count[k], k)) if row.any() else -1
                  for row in y])
keep = group >= 0
sil = silhouette_score(e[keep], group[keep], metric="cosine")
k = r["knn_k"]
nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(e[keep])
_, idx = nn.kneighbors(e[keep])
g = group[keep]
pur = float(np.mean([(g[row[1:]] == g[i]).mean() for i, row in enumerate(idx)]))
assert r["samples"] == keep.sum() and r["groups"] == len(set(g)), r
assert abs(r["silhouette_cosine"] - sil) < 1e-6, (r["silhouette_cosine"], sil)
assert abs(r["knn_purity"] - pur) < 1e-9, (r["knn_purity"], pur)
rows = open("p.tsv").read().splitlines()
assert rows[0].split("\t") == ["index", "sample", "group", "class", "x", "y"], rows[0]
assert [l.split("\t")[1] for l in rows[1:]] == ids
assert [int(l.split("\t")[2]) for l in rows[1:]] == group.tolist()
svg = open("p.svg").read()
assert svg.count('r="3"') == len(ids) and "PCA of the test split" in svg
print("cluster.sh: silhouette %.6f, kNN purity %.6f (k = %d) equal scikit-learn's"
      % (sil, pur, k))
PY
rc=$?
if "$mosaic" eval --model m.safetensors --data data --protocol cluster --projection q.tsv \
   --method umap >/dev/null 2>err; then
  echo "FAIL: --method umap accepted" >&2
  rc=1
fi
exit $rc
