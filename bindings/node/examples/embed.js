'use strict';
// node embed.js MODEL DATA OUT: the fused embeddings of every sample of the BigEarthNet
// v2 dataset at DATA through the Node binding, written to OUT as raw little-endian
// float32 — what tests/bindings/embed_ref.c does in C (the parity test compares them).
const fs = require('fs');
const mosaic = require('../lib');

if (process.argv.length !== 5) {
  console.error('usage: node embed.js MODEL DATA OUT');
  process.exit(2);
}
const [modelPath, data, out] = process.argv.slice(2);
let model, ds, batch;
try {
  model = mosaic.Model.load(modelPath);
  ds = mosaic.Dataset.open(data, 'bigearthnet-v2');
  batch = new mosaic.Batch();
  const idx = Array.from({ length: ds.size }, (_, i) => i);
  ds.fillBatch(idx, batch);
  const h = model.embed(batch, mosaic.constants.MSC_EMBED_FUSED);
  // (the machines libmosaic runs on are little-endian, as a Float32Array's bytes are)
  fs.writeFileSync(out, Buffer.from(h.buffer, h.byteOffset, h.byteLength));
  console.log(`embed.js (Node, libmosaic ${mosaic.version()}): ${idx.length} samples -> ${out}`);
} catch (e) {
  console.error(`embed.js: ${e instanceof mosaic.MosaicError ? e.toString() : e}`);
  process.exitCode = 1;
} finally {
  for (const h of [batch, ds, model]) if (h) h.close();
}
