'use strict';
// The Node layer of libmosaic (docs/bindings.md, "Node"): classes whose close() frees
// the C handle (twice is safe; a FinalizationRegistry frees what was never closed),
// errors as MosaicError with the C status and the library's message, Float32Array in
// and out. The whole C API is `functions` (lib/ffi.js, generated from the header), with
// every constant in `constants`; `raw` is each handle's C pointer.

const { koffi, HEADER_VERSION, constants, functions: C } = require('./ffi');

class MosaicError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'MosaicError';
    this.status = status;
  }

  toString() {
    return `${C.msc_status_string(this.status)} (${this.status}): ${this.message}`;
  }
}

/**
 * Throws MosaicError for a status other than MSC_OK; also for the status of a raw call
 * (`functions`) made just before. Node runs JavaScript on one thread, so
 * msc_last_error() is the failed call's message.
 */
function check(status) {
  if (status !== constants.MSC_OK) throw new MosaicError(status, C.msc_last_error());
}

const registry = new FinalizationRegistry(({ free, raw }) => free(raw));

class Handle {
  constructor(raw, free) {
    this.raw = raw;
    this._free = free;
    this._token = {};
    registry.register(this, { free, raw }, this._token);
  }

  close() {
    if (this.raw !== null) {
      registry.unregister(this._token);
      this._free(this.raw);
      this.raw = null;
    }
  }

  live() {
    if (this.raw === null) throw new Error(`${this.constructor.name} is closed`);
    return this.raw;
  }
}

function created(fn, ...args) {
  const out = [null];
  check(fn(...args, out));
  return out[0];
}

class Options extends Handle {
  constructor() {
    super(created(C.msc_options_create), C.msc_options_free);
  }

  set(key, value) {
    if (typeof value === 'string') check(C.msc_options_set_string(this.live(), key, value));
    else if (Number.isInteger(value) || typeof value === 'bigint')
      check(C.msc_options_set_int(this.live(), key, value));
    else check(C.msc_options_set_float(this.live(), key, value));
    return this;
  }

  getInt(key) {
    const v = new BigInt64Array(1);
    check(C.msc_options_get_int(this.live(), key, v));
    return Number(v[0]);
  }

  getString(key) {
    const len = new BigUint64Array(1);
    let buf = Buffer.alloc(64);
    let st = C.msc_options_get_string(this.live(), key, buf, buf.length, len);
    if (st === constants.MSC_E_BUFFER_TOO_SMALL) { // len is the length: once more
      buf = Buffer.alloc(Number(len[0]) + 1);
      st = C.msc_options_get_string(this.live(), key, buf, buf.length, len);
    }
    check(st);
    return buf.toString('utf8', 0, Number(len[0]));
  }
}

class Model extends Handle {
  constructor(raw) {
    super(raw, C.msc_model_free);
  }

  static create(options) {
    return new Model(created(C.msc_model_create, options.live()));
  }

  /** Loads a model file; runtime (Options) may be null. */
  static load(path, runtime = null) {
    return new Model(created(C.msc_model_load, path, runtime ? runtime.live() : null));
  }

  save(path) {
    check(C.msc_model_save(this.live(), path));
  }

  embeddingSize(which) {
    const n = new BigInt64Array(1);
    check(C.msc_model_embedding_size(this.live(), which, n));
    return Number(n[0]);
  }

  /** The embeddings of the batch's samples, N × embeddingSize(which), a Float32Array. */
  embed(batch, which) {
    const out = new Float32Array(batch.size * this.embeddingSize(which));
    check(C.msc_embed(this.live(), batch.live(), which, out, out.length));
    return out;
  }
}

class Batch extends Handle {
  constructor() {
    super(created(C.msc_batch_create), C.msc_batch_free);
  }

  get size() {
    return Number(C.msc_batch_size(this.live()));
  }

  /** Sets a modality's n × c × h × w raw pixel values (a Float32Array, copied). */
  setModality(name, nchw, n, c, h, w) {
    if (!(nchw instanceof Float32Array) || nchw.length !== n * c * h * w)
      throw new MosaicError(constants.MSC_E_SHAPE,
        `expected a Float32Array of ${n}x${c}x${h}x${w} values`);
    check(C.msc_batch_set_modality(this.live(), name, nchw, n, c, h, w));
  }
}

class Dataset extends Handle {
  constructor(raw) {
    super(raw, C.msc_dataset_free);
  }

  /** Opens the dataset at root in format (e.g. 'bigearthnet-v2'); options may be null. */
  static open(root, format, options = null) {
    return new Dataset(created(C.msc_dataset_open, root, format,
      options ? options.live() : null));
  }

  get size() {
    return Number(C.msc_dataset_size(this.live()));
  }

  /** Reads the samples at indices (an array of integers) into batch. */
  fillBatch(indices, batch) {
    const idx = BigInt64Array.from(indices, (i) => BigInt(i));
    check(C.msc_dataset_fill_batch(this.live(), idx, idx.length, batch.live()));
  }
}

function version() {
  return C.msc_version_string();
}

module.exports = {
  koffi, HEADER_VERSION, constants, functions: C, MosaicError, check, Options, Model, Batch,
  Dataset, version,
};
