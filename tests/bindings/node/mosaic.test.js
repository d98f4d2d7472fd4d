'use strict';
// The Node binding against the C API (tests/bindings/node.cmake): errors carry the C
// call's own status and message, close() twice is safe, options round-trip (non-ASCII
// text too), identical samples embed to identical rows, the generated structs
// (msc_vi_bands, msc_rp_params with its pointer members) have the C layout: the indices
// come out as their formulas (mosaic.h) give them; a log callback (the generated
// prototype msc_log_fn) receives the library's message.
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
  const odd = '/nonexistent/mod\u00e8le \u03c1.safetensors';
  assert.throws(() => mosaic.Model.load(odd), (e) => e.message.includes(odd));
});

test('options round-trip, unknown keys, close twice', () => {
  const o = new mosaic.Options();
  o.set('seed', 123);
  assert.strictEqual(o.getInt('seed'), 123);
  const long = 'x'.repeat(300); // longer than the first buffer
  o.set('modality.0.band_names', long);
  assert.strictEqual(o.getString('modality.0.band_names'), long);
  const text = 'bande \u00e9\u00e8 \u03c1\u2088 \u6ce2\u6bb5'; // 2- and 3-byte UTF-8
  o.set('modality.0.band_names', text);
  assert.strictEqual(o.getString('modality.0.band_names'), text);
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

// NDVI of a T x 5 x 1 series with B4 and B8 in channels 1 and 3 and an offset, through
// msc_vi_bands; then its recurrence plot (continuous, S = T) through msc_rp_params,
// whose indices member is an Int32Array. Expected values: the formulas of mosaic.h.
test('structs: vegetation index and recurrence plots', () => {
  const { koffi, constants: K } = mosaic;
  const t = 4, ch = 5;
  const x = new Float32Array(t * ch);
  for (let i = 0; i < t; i++) {
    x[i * ch + 1] = 1500 + 100 * i; // B4
    x[i * ch + 3] = 3000 + 700 * i * i; // B8
  }
  const bands = { struct_size: koffi.sizeof('msc_vi_bands'), b2: -1, b3: -1, b4: 1, b8: 3,
    b12: -1, scale: 10000, offset: -1000 };
  const ndvi = new Float32Array(t);
  const valid = new Uint8Array(t);
  mosaic.check(C.msc_vegetation_index(K.MSC_VI_NDVI, x, t, ch, 1, bands, ndvi, valid));
  for (let i = 0; i < t; i++) {
    const r4 = (x[i * ch + 1] - 1000) / 10000, r8 = (x[i * ch + 3] - 1000) / 10000;
    assert.ok(Math.abs(ndvi[i] - Math.fround((r8 - r4) / (r8 + r4))) <= 1e-6, `NDVI[${i}]`);
    assert.strictEqual(valid[i], 1);
  }
  const params = { struct_size: koffi.sizeof('msc_rp_params'), n_indices: 1,
    indices: new Int32Array([K.MSC_VI_NDVI]), binary: 0, eps_is_percentile: 0, eps: 0,
    size: 0, days: null };
  const plot = new Float32Array(t * t);
  const yx = new BigInt64Array([0n, 0n]);
  mosaic.check(C.msc_recurrence_plots(x, t, ch, 1, 1, bands, params, yx, 1, plot, null));
  for (let i = 0; i < t; i++)
    for (let j = 0; j < t; j++)
      assert.ok(Math.abs(plot[i * t + j] - Math.abs(ndvi[i] - ndvi[j])) <= 1e-6, `plot ${i} ${j}`);
  params.struct_size = 4; // too small: the C API's error, through check()
  assert.throws(() => mosaic.check(C.msc_recurrence_plots(x, t, ch, 1, 1, bands, params, yx,
    1, plot, null)), (e) => e instanceof mosaic.MosaicError &&
    e.status === K.MSC_E_INVALID_ARGUMENT && e.message.includes('struct_size'));
});

// msc_backend_select('auto') logs at MSC_LOG_DEBUG when it settles on the CPU
// (lib/backend/registry.c); the message reaches a JS function registered as msc_log_fn.
test('a log callback receives the library message', () => {
  const { koffi, constants: K } = mosaic;
  const got = [];
  const cb = koffi.register((level, message) => { got.push(`${level} ${message}`); },
    koffi.pointer('msc_log_fn'));
  try {
    mosaic.check(C.msc_set_log_callback(cb, null, K.MSC_LOG_DEBUG));
    const chosen = [null];
    const st = C.msc_backend_select('auto', chosen);
    mosaic.check(C.msc_set_log_callback(null, null, K.MSC_LOG_ERROR));
    mosaic.check(st);
    if (chosen[0] === 'cpu')
      assert.ok(got.some((m) => m.startsWith(`${K.MSC_LOG_DEBUG} backend 'auto' resolved to 'cpu'`)),
        got.join('; '));
  } finally {
    koffi.unregister(cb);
  }
});
