#!/usr/bin/env bash
# parity.sh — one language binding's parity test (docs/bindings.md, "Parity tests").
#
#   parity.sh EMBED_REF DATA WORKDIR EXAMPLE [ARGS...]
#
# Makes a tiny model with EMBED_REF (tests/bindings/embed_ref.c), computes the fused
# embeddings of every sample of DATA through the C API, then runs
# `EXAMPLE ARGS... MODEL DATA OUT` — the language's example, which loads the model,
# embeds the same samples through its binding and writes them as raw float32 — and
# compares the two files byte for byte. An example that exits 77 has skipped (its
# toolchain is missing: it says why on stderr); the test is then reported skipped.
set -euo pipefail
ref=$1 data=$2 work=$3
shift 3
rm -rf "$work"
mkdir -p "$work"
"$ref" make-model "$work/model.safetensors" "$data" >/dev/null
"$ref" embed "$work/model.safetensors" "$data" "$work/c.f32" >/dev/null
rc=0
"$@" "$work/model.safetensors" "$data" "$work/binding.f32" || rc=$?
if [ "$rc" -eq 77 ]; then
  echo "parity.sh: skipped: $1 reported that it cannot run here (see above)"
  exit 77
fi
if [ "$rc" -ne 0 ]; then
  echo "parity.sh: the example failed (exit $rc): $*" >&2
  exit 1
fi
if ! cmp "$work/c.f32" "$work/binding.f32"; then
  echo "parity.sh: the binding's embeddings differ from the C API's ($work)" >&2
  exit 1
fi
echo "parity.sh: $(stat -c %s "$work/c.f32") bytes of embeddings identical to the C API's"
