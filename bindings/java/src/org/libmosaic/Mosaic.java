package org.libmosaic;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;

/**
 * The Java layer of libmosaic (docs/bindings.md, "Java"): handles that are
 * AutoCloseable (close() twice is safe), errors as {@link MosaicException}, float[] in and
 * out. The whole C API is {@link MosaicLibrary}; raw() gives each handle's C pointer.
 */
public final class Mosaic {
  private Mosaic() {}

  static final MosaicLibrary C = MosaicLibrary.INSTANCE;

  /** Throws the library's error for a status other than MSC_OK: for a status of a raw
   * {@link MosaicLibrary} call, made just before on the same thread. JNA calls from one
   * Java thread run on one OS thread, so msc_last_error() is the failed call's message. */
  public static void check(int status) {
    if (status != MosaicLibrary.MSC_OK) throw new MosaicException(status, C.msc_last_error());
  }

  /** The library's version, "MAJOR.MINOR.PATCH". */
  public static String version() {
    return C.msc_version_string();
  }

  /** The common part of the handle classes. */
  abstract static class Handle implements AutoCloseable {
    Pointer raw;

    Handle(Pointer raw) {
      this.raw = raw;
    }

    abstract void free(Pointer p);

    /** The C handle, still owned by this object (null once closed). */
    public Pointer raw() {
      return raw;
    }

    @Override
    public void close() {
      if (raw != null) {
        free(raw);
        raw = null;
      }
    }

    Pointer live() {
      if (raw == null) throw new IllegalStateException(getClass().getSimpleName() + " is closed");
      return raw;
    }
  }

  /** A set of options (msc_options). */
  public static final class Options extends Handle {
    public Options() {
      super(create());
    }

    private static Pointer create() {
      PointerByReference out = new PointerByReference();
      check(C.msc_options_create(out));
      return out.getValue();
    }

    @Override
    void free(Pointer p) {
      C.msc_options_free(p);
    }

    public Options set(String key, long value) {
      check(C.msc_options_set_int(live(), key, value));
      return this;
    }

    public Options set(String key, double value) {
      check(C.msc_options_set_float(live(), key, value));
      return this;
    }

    public Options set(String key, String value) {
      check(C.msc_options_set_string(live(), key, value));
      return this;
    }

    public long getInt(String key) {
      long[] v = new long[1];
      check(C.msc_options_get_int(live(), key, v));
      return v[0];
    }

    /** A string key of any length. */
    public String getString(String key) {
      long[] len = new long[1];
      byte[] buf = new byte[64];
      int st = C.msc_options_get_string(live(), key, buf, new MosaicLibrary.SizeT(buf.length), len);
      if (st == MosaicLibrary.MSC_E_BUFFER_TOO_SMALL) { // len is the length: once more
        buf = new byte[(int) len[0] + 1];
        st = C.msc_options_get_string(live(), key, buf, new MosaicLibrary.SizeT(buf.length), len);
      }
      check(st);
      return new String(buf, 0, (int) len[0], java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  /** A model (msc_model). */
  public static final class Model extends Handle {
    private Model(Pointer raw) {
      super(raw);
    }

    @Override
    void free(Pointer p) {
      C.msc_model_free(p);
    }

    /** A model with freshly initialised weights. */
    public static Model create(Options options) {
      PointerByReference out = new PointerByReference();
      check(C.msc_model_create(options.live(), out));
      return new Model(out.getValue());
    }

    /** Loads a model file; runtime may be null. */
    public static Model load(String path, Options runtime) {
      PointerByReference out = new PointerByReference();
      check(C.msc_model_load(path, runtime == null ? null : runtime.live(), out));
      return new Model(out.getValue());
    }

    /** Saves the model atomically. */
    public void save(String path) {
      check(C.msc_model_save(live(), path));
    }

    /** Floats of one sample's embedding of kind which (MosaicLibrary.MSC_EMBED_*). */
    public int embeddingSize(int which) {
      long[] n = new long[1];
      check(C.msc_model_embedding_size(live(), which, n));
      return (int) n[0];
    }

    /** The embeddings of the batch's samples, N × embeddingSize(which), row-major. */
    public float[] embed(Batch batch, int which) {
      float[] out = new float[batch.size() * embeddingSize(which)];
      check(C.msc_embed(live(), batch.live(), which, out, new MosaicLibrary.SizeT(out.length)));
      return out;
    }
  }

  /** A batch of samples (msc_batch). */
  public static final class Batch extends Handle {
    public Batch() {
      super(create());
    }

    private static Pointer create() {
      PointerByReference out = new PointerByReference();
      check(C.msc_batch_create(out));
      return out.getValue();
    }

    @Override
    void free(Pointer p) {
      C.msc_batch_free(p);
    }

    public int size() {
      return (int) C.msc_batch_size(live());
    }

    /** Sets a modality's n × c × h × w raw pixel values (copied). */
    public void setModality(String name, float[] nchw, long n, long c, long h, long w) {
      if (nchw.length != n * c * h * w)
        throw new MosaicException(MosaicLibrary.MSC_E_SHAPE,
            nchw.length + " floats for " + n + "x" + c + "x" + h + "x" + w);
      check(C.msc_batch_set_modality(live(), name, nchw, n, c, h, w));
    }
  }

  /** A dataset on disk (msc_dataset). */
  public static final class Dataset extends Handle {
    private Dataset(Pointer raw) {
      super(raw);
    }

    @Override
    void free(Pointer p) {
      C.msc_dataset_free(p);
    }

    /** Opens the dataset at root in format (e.g. "bigearthnet-v2"); options may be null. */
    public static Dataset open(String root, String format, Options options) {
      PointerByReference out = new PointerByReference();
      check(C.msc_dataset_open(root, format, options == null ? null : options.live(), out));
      return new Dataset(out.getValue());
    }

    public int size() {
      return (int) C.msc_dataset_size(live());
    }

    /** Reads the samples at indices into batch. */
    public void fillBatch(long[] indices, Batch batch) {
      check(C.msc_dataset_fill_batch(live(), indices, indices.length, batch.live()));
    }
  }
}
