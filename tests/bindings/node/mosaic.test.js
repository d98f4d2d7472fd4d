'use strict';
// The Node binding against the C API (tests/bindings/node.cmake): errors carry the C
// call's own status and message, close() twice is safe, options round-trip, identical
// samples embed to identical rows, a struct with pointer fields reaches C.
const test = require('node:test');
const assert = require('node:assert');
const mosaic = require(process.env.MOSAIC_NODE_PACKAGE);
const C = mosaic.functions;

test('a missing model file is the C error', () => {
  const path = '/nonexistent/model.safetensors';
  const want = C.msc_model_load(path, null, [null]);
  const wantMsg = C.msc_last_error();
  assert.ok(want < 0);
  assert.throws(() => mosaic.Model.load(path), (e) => {
    assert.ok(e instanceof mosaic.MosaicError);
    assert.strictEqual(e.status, want);
    assert.strictEqual(e.message, wantMsg);
    assert.ok(e.toString().includes(path));
    return true;
  });
});

test('options round-trip, unknown keys, close twice', () => {
  const o = new mosaic.Options();
  o.set('seed', 123);
  assert.strictEqual(o.getInt('seed'), 123);
  const long = 'x'.repeat(300); // longer than the first buffer
  o.set('modality.0.band_names', long);
  assert.strictEqual(o.getString('modality.0.band_names'), long);
  assert.throws(() => o.set('no.such.key', 1), (e) =>
    e.status === C.msc_options_set_int(o.raw, 'no.such.key', 1));
  o.close();
  o.close();
  assert.strictEqual(o.raw, null);
});

test('identical samples embed to identical rows', () => {
  const o = new mosaic.Options().set('modality.0.encoder', 'tiny').set('modality.1.encoder', 'tiny');
  const m = mosaic.Model.create(o);
  o.close();
  const b = new mosaic.Batch();
  const p = 120 * 120;
  const s1 = new Float32Array(2 * 2 * p);
  const s2 = new Float32Array(2 * 12 * p);
  for (let i = 0; i < 12 * p; i++) s2[i] = s2[12 * p + i] = i % 3000;
  b.setModality('s1', s1, 2, 2, 120, 120);
  b.setModality('s2', s2, 2, 12, 120, 120);
  assert.throws(() => b.setModality('s1', new Float32Array(3), 1, 2, 2, 2),
    (e) => e.status === mosaic.constants.MSC_E_SHAPE);
  const h = m.embed(b, mosaic.constants.MSC_EMBED_FUSED);
  const d = m.embeddingSize(mosaic.constants.MSC_EMBED_FUSED);
  assert.strictEqual(h.length, 2 * d);
  assert.deepStrictEqual(h.subarray(0, d), h.subarray(d));
  b.close();
  m.close();
});

// msc_rp_params has pointer fields (indices, days): a typed array in a koffi struct
// reaches C. The continuous plot of a 1-pixel NDVI series is |v_i - v_j|, with v from
// msc_vegetation_index.
test('a struct with pointer fields reaches C (recurrence plots)', () => {
  const K = mosaic.constants;
  const t = 3, ch = 10; // ch: the PASTIS band table's channels (bands = null)
  const x = new Float32Array(t * ch);
  for (let i = 0; i < x.length; i++) x[i] = 500 + (i * 7919) % 3000;
  const v = new Float32Array(t);
  assert.strictEqual(C.msc_vegetation_index(K.MSC_VI_NDVI, x, t, ch, 1, null, v, null), K.MSC_OK);
  const params = {
    struct_size: mosaic.koffi.sizeof('msc_rp_params'), n_indices: 1,
    indices: new Int32Array([K.MSC_VI_NDVI]), binary: 0, eps_is_percentile: 0, eps: 0,
    size: 0, days: null,
  };
  const out = new Float32Array(t * t);
  const valid = new Uint8Array(1);
  const st = C.msc_recurrence_plots(x, t, ch, 1, 1, null, params, new BigInt64Array([0n, 0n]),
    1, out, valid);
  assert.strictEqual(st, K.MSC_OK, C.msc_last_error());
  assert.strictEqual(valid[0], 1);
  assert.ok(Math.abs(v[0] - v[1]) > 1e-3, 'the series is not constant');
  for (let i = 0; i < t; i++) {
    for (let j = 0; j < t; j++) {
      assert.ok(Math.abs(out[i * t + j] - Math.abs(v[i] - v[j])) <= 1e-6,
        `R[${i}][${j}] = ${out[i * t + j]}, |v_i - v_j| = ${Math.abs(v[i] - v[j])}`);
    }
  }
});
