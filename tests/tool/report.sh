#!/usr/bin/env bash
# report.sh MOSAIC WORKDIR — the per-step training log and `mosaic report`:
#  - `mosaic train` writes M.steps.jsonl: one line per step, steps 1..N in order, N =
#    epochs × floor(training samples / batch) counted from the dataset's metadata.tsv;
#    a resumed run keeps the lines up to the checkpoint's step and drops later ones;
#  - `mosaic report` writes one HTML file with the charts (SVG ids), no script, no URL
#    but the SVG namespace, and per-class AP equal to `mosaic eval --json` (4 decimals);
#    its Embeddings section has the silhouette and kNN purity of `mosaic eval --protocol
#    cluster` on the same model and split, and one point per sample in its projection;
#  - bad usage exits 2, a missing model 1;
#  - with chromium installed, the page renders headless to a screenshot that is not blank
#    (decoded with the Python standard library); skipped with a message otherwise.
set -uo pipefail
mosaic=$1
work=$2
py=/usr/bin/python3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
expect() { # expect STATUS CMD...: stdout in out, stderr in err
  local want=$1
  shift
  "$@" >out 2>err
  local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "'$*' exited $got, expected $want"
    sed 's/^/  stderr: /' err | head -5 >&2
  fi
}

batch=8
common=(--data data --encoder tiny --batch $batch --progress none --workers 1 --seed 5)
expect 0 "$mosaic" synth data --n 60 --seed 7
ntrain=$(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "split") s = i; next }
                     $s == "train" { n++ } END { print n + 0 }' data/metadata.tsv)
spe=$((ntrain / batch))
[ "$spe" -ge 2 ] || fail "the synthetic training split has $ntrain samples: too few"

# --- the per-step log: epoch 1, then a resume to 2 epochs --------------------------------
expect 0 "$mosaic" train "${common[@]}" --epochs 1 --out m.safetensors
[ -f m.steps.jsonl ] || fail "train wrote no m.steps.jsonl"
[ "$(wc -l <m.steps.jsonl)" -eq "$spe" ] ||
  fail "m.steps.jsonl has $(wc -l <m.steps.jsonl) lines after 1 epoch, expected $spe"
cp m.steps.jsonl epoch1.jsonl
# What a run killed after its last checkpoint leaves: steps the checkpoint does not hold.
printf '{"step": %d, "epoch": 2, "loss": 1}\n{"step": 999, "epoch": 9, "loss": 1}\n' \
  $((spe + 1)) >>m.steps.jsonl
expect 0 "$mosaic" train "${common[@]}" --epochs 2 --resume m.safetensors
$py - m.steps.jsonl epoch1.jsonl "$spe" 2 <<'EOF' || fail "m.steps.jsonl after the resume"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
first = open(sys.argv[2]).read().splitlines()
spe, epochs = int(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(l) for l in lines]
assert len(rows) == spe * epochs, f"{len(rows)} lines, expected {spe * epochs}"
assert [r["step"] for r in rows] == list(range(1, spe * epochs + 1)), [r["step"] for r in rows]
assert lines[:spe] == first, "the lines of epoch 1 changed"
for r in rows:
    assert r["epoch"] == (r["step"] - 1) // spe + 1, r
    assert r["skipped"] is False and r["loss"] > 0 and r["lr"] > 0, r
    for k in ("loss_intra", "loss_inter", "loss_fused", "loss_bce", "wall"):
        assert k in r, k
walls = [r["wall"] for r in rows]
assert walls == sorted(walls), walls
EOF

# --- the report ------------------------------------------------------------------------
expect 0 "$mosaic" report --model m.safetensors --data data --split test --out r.html \
  --progress none
grep -qx 'r.html' out || fail "report did not print the path it wrote"
[ -s r.html ] || fail "report wrote no r.html"
for id in loss-steps lr-steps history-loss history-val class-bars pr-curves confusion \
  embeddings; do
  grep -q "<svg id=\"$id\"" r.html || fail "r.html has no <svg id=\"$id\">"
done
grep -q '<polyline' r.html || fail "r.html has no curve"
grep -q 'class="cell"' r.html || fail "r.html has no confusion cell"
grep -qi '<script' r.html && fail "r.html has a script"
grep -oE 'https?://[^"]*' r.html | sort -u >urls
[ "$(cat urls)" = "http://www.w3.org/2000/svg" ] || fail "r.html references: $(cat urls)"
grep -q 'macro AP' r.html || fail "r.html: no macro AP in the PR legend"
if grep -q 'has no libpng' r.html; then
  echo "report: this build has no libpng: no quicklooks to check"
else
  grep -q 'src="data:image/png;base64,' r.html || fail "r.html has no quicklook"
fi
expect 0 "$mosaic" eval --model m.safetensors --data data --split test --json e.json \
  --progress none
$py - r.html e.json <<'EOF' || fail "per-class AP of the report differs from mosaic eval"
import json, re, sys
html = open(sys.argv[1]).read()
table = html[html.index('<table id="per-class">'):]
table = table[:table.index("</table>")]
got = re.findall(r'<td class="ap">([^<]*)</td>', table)
want = [c["ap"] for c in json.load(open(sys.argv[2]))["per_class"]]
assert len(got) == len(want), (len(got), len(want))
for g, w in zip(got, want):
    if w is None:
        assert g == "\u2013", (g, w)
    else:
        assert abs(float(g) - w) <= 5.1e-5, (g, w)
print("per-class AP of", len(want), "classes equal to eval within 5e-5")
EOF

# The Embeddings section: the same numbers as `mosaic eval --protocol cluster` on the same
# model and split (the training split: more samples and groups than the test split), one
# point per sample in its inline scatter plot, the legend's counts adding up to the grouped.
expect 0 "$mosaic" report --model m.safetensors --data data --split train --k 5 --out emb.html \
  --progress none
expect 0 "$mosaic" eval --model m.safetensors --data data --split train --protocol cluster \
  --k 5 --json cl.json --progress none
$py - emb.html cl.json "$ntrain" <<'EOF' || fail "the report's Embeddings differ from mosaic eval"
import json, math, re, sys
html = open(sys.argv[1]).read()
want = json.load(open(sys.argv[2]))
n = int(sys.argv[3])
sec = html[html.index("<h2>Embeddings</h2>"):]
sec = sec[:sec.index("<h2>", 4)]
sil = float(re.search(r'<td id="silhouette">([^<]*)</td>', sec).group(1))
pur = float(re.search(r'<td id="knn-purity">([^<]*)</td>', sec).group(1))
assert math.isfinite(sil) and math.isfinite(pur), (sil, pur)
assert abs(sil - want["silhouette_cosine"]) <= 5.1e-5, (sil, want)
assert abs(pur - want["knn_purity"]) <= 5.1e-5, (pur, want)
assert "kNN purity (k = %d, cosine)" % want["knn_k"] in sec and want["knn_k"] == 5
assert "<td>%d</td>" % want["samples"] in sec and "<td>%d</td>" % want["groups"] in sec
assert "by its rarest positive label" in sec
svg = sec[sec.index('<svg id="embeddings"'):sec.index("</svg>")]
assert "t-SNE of the train split (%d samples), by rarest label" % n in svg, svg[:400]
points = svg.count('r="3"')
legend = [int(c) for c in re.findall(r'r="4"[^>]*/><text[^>]*>[^<]* \((\d+)\)</text>', svg)]
assert points == n, (points, n)
assert sum(legend) == want["samples"] and len(legend) == want["groups"], (legend, want)
print("report embeddings: silhouette %.4f, kNN purity %.4f, %d points, %d groups: as eval"
      % (sil, pur, points, len(legend)))
EOF
expect 2 "$mosaic" report --model m.safetensors --data data --method umap --out bad.html \
  --progress none
[ -e bad.html ] && fail "report --method umap wrote bad.html"

# A model without its training files beside it: notes instead of curves, still exit 0.
mkdir -p lone && cp m.safetensors lone/
expect 0 "$mosaic" report --model lone/m.safetensors --data data --out lone.html --progress none
grep -q 'No per-step log' lone.html || fail "lone.html: no note about the missing steps log"
grep -q 'No training history' lone.html || fail "lone.html: no note about the missing history"

# --- usage and errors --------------------------------------------------------------------
expect 2 "$mosaic" report --data data
expect 2 "$mosaic" report --model m.safetensors
expect 2 "$mosaic" report --model m.safetensors --data data --bogus
expect 1 "$mosaic" report --model missing.safetensors --data data --progress none
expect 0 "$mosaic" report --help

# --- a browser renders it ------------------------------------------------------------------
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "report: chromium not installed: the rendering check is skipped"
else
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --screenshot="$PWD/shot.png" \
    --window-size=1200,2000 "file://$PWD/r.html" >chromium.log 2>&1 ||
    fail "chromium could not render r.html (chromium.log)"
  $py - shot.png <<'EOF' || fail "the screenshot of r.html is blank"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, hdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        hdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype = hdr[:4]
assert depth == 8 and ctype in (2, 6), hdr
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, colours, ink = bytearray(stride), set(), 0
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, w, 2):
        px = bytes(line[x * bpp:x * bpp + 3])
        colours.add(px)
        ink += px != b"\xff\xff\xff"
    prev = line
print(f"screenshot {w}x{h}: {len(colours)} colours, {ink} non-white pixels (every 2nd column)")
assert len(colours) > 20 and ink > 10000, (len(colours), ink)
EOF
fi

if [ "$failures" -gt 0 ]; then
  echo "report.sh: $failures failure(s)" >&2
  exit 1
fi
echo "report.sh: all passed"
