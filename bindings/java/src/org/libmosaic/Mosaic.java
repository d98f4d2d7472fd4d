package org.libmosaic;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The Java layer of libmosaic (docs/bindings.md, "Java"): handles that are
 * AutoCloseable (close() twice is safe; a Cleaner frees what was never closed), errors as
 * {@link MosaicException}, float[] in and out. The whole C API is {@link MosaicLibrary}; raw() gives each handle's C pointer.
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

  /** Frees what was never closed, once its object is unreachable (a backstop: close it). */
  private static final Cleaner CLEANER = Cleaner.create();

  /** The freeing of one C handle; it holds the pointer, never the Java object. */
  private static final class Free implements Runnable {
    private final Pointer raw;
    private final Consumer<Pointer> free;

    Free(Pointer raw, Consumer<Pointer> free) {
      this.raw = raw;
      this.free = free;
    }

    @Override
    public void run() {
      free.accept(raw);
    }
  }

  /** The common part of the handle classes: close() frees the C handle once, and so
   * does the Cleaner if close() is never called. */
  abstract static class Handle implements AutoCloseable {
    private Pointer raw;
    private final Cleaner.Cleanable cleanable;

    Handle(Pointer raw, Consumer<Pointer> free) {
      this.raw = raw;
      this.cleanable = CLEANER.register(this, new Free(raw, free));
    }

    /** The C handle, still owned by this object (null once closed). */
    public Pointer raw() {
      return raw;
    }

    @Override
    public void close() {
      if (raw != null) {
        raw = null;
        cleanable.clean(); // runs Free at most once
      }
    }

    Pointer live() {
      if (raw == null) throw new IllegalStateException(getClass().getSimpleName() + " is closed");
      return raw;
    }

    /** c on the handle, this object (so its handle) kept reachable until c returns:
     * otherwise the Cleaner may free the handle during the C call, once the JIT sees
     * no later use of the object. */
    <T> T call(Function<Pointer, T> c) {
      try {
        return c.apply(live());
      } finally {
        Reference.reachabilityFence(this);
      }
    }
  }

  /** The handle of h, or NULL for a null h; with keep() after the call. */
  static Pointer rawOrNull(Handle h) {
    return h == null ? null : h.live();
  }

  /** Keeps the handles passed to a C call reachable until here (Handle.call). */
  static void keep(Object a, Object b) {
    Reference.reachabilityFence(a);
    Reference.reachabilityFence(b);
  }

  /** A set of options (msc_options). */
  public static final class Options extends Handle {
    public Options() {
      super(create(), C::msc_options_free);
    }

    private static Pointer create() {
      PointerByReference out = new PointerByReference();
      check(C.msc_options_create(out));
      return out.getValue();
    }

    public Options set(String key, long value) {
      check(call(p -> C.msc_options_set_int(p, key, value)));
      return this;
    }

    public Options set(String key, double value) {
      check(call(p -> C.msc_options_set_float(p, key, value)));
      return this;
    }

    public Options set(String key, String value) {
      check(call(p -> C.msc_options_set_string(p, key, value)));
      return this;
    }

    public long getInt(String key) {
      long[] v = new long[1];
      check(call(p -> C.msc_options_get_int(p, key, v)));
      return v[0];
    }

    /** A string key of any length. */
    public String getString(String key) {
      return call(p -> {
        long[] len = new long[1];
        byte[] buf = new byte[64];
        int st = C.msc_options_get_string(p, key, buf, new MosaicLibrary.SizeT(buf.length), len);
        if (st == MosaicLibrary.MSC_E_BUFFER_TOO_SMALL) { // len is the length: once more
          buf = new byte[(int) len[0] + 1];
          st = C.msc_options_get_string(p, key, buf, new MosaicLibrary.SizeT(buf.length), len);
        }
        check(st);
        return new String(buf, 0, (int) len[0], StandardCharsets.UTF_8);
      });
    }
  }

  /** A model (msc_model). */
  public static final class Model extends Handle {
    private Model(Pointer raw) {
      super(raw, C::msc_model_free);
    }

    /** A model with freshly initialised weights. */
    public static Model create(Options options) {
      PointerByReference out = new PointerByReference();
      check(options.call(p -> C.msc_model_create(p, out)));
      return new Model(out.getValue());
    }

    /** Loads a model file; runtime may be null. */
    public static Model load(String path, Options runtime) {
      PointerByReference out = new PointerByReference();
      try {
        check(C.msc_model_load(path, rawOrNull(runtime), out));
      } finally {
        Reference.reachabilityFence(runtime);
      }
      return new Model(out.getValue());
    }

    /** Saves the model atomically. */
    public void save(String path) {
      check(call(p -> C.msc_model_save(p, path)));
    }

    /** Floats of one sample's embedding of kind which (MosaicLibrary.MSC_EMBED_*). */
    public int embeddingSize(int which) {
      long[] n = new long[1];
      check(call(p -> C.msc_model_embedding_size(p, which, n)));
      return (int) n[0];
    }

    /** The embeddings of the batch's samples, N × embeddingSize(which), row-major. */
    public float[] embed(Batch batch, int which) {
      float[] out = new float[batch.size() * embeddingSize(which)];
      try {
        check(C.msc_embed(live(), batch.live(), which, out, new MosaicLibrary.SizeT(out.length)));
      } finally {
        keep(this, batch);
      }
      return out;
    }
  }

  /** A batch of samples (msc_batch). */
  public static final class Batch extends Handle {
    public Batch() {
      super(create(), C::msc_batch_free);
    }

    private static Pointer create() {
      PointerByReference out = new PointerByReference();
      check(C.msc_batch_create(out));
      return out.getValue();
    }

    public int size() {
      return (int) (long) call(C::msc_batch_size);
    }

    /** Sets a modality's n × c × h × w raw pixel values (copied). */
    public void setModality(String name, float[] nchw, long n, long c, long h, long w) {
      if (nchw.length != n * c * h * w)
        throw new MosaicException(MosaicLibrary.MSC_E_SHAPE,
            nchw.length + " floats for " + n + "x" + c + "x" + h + "x" + w);
      check(call(p -> C.msc_batch_set_modality(p, name, nchw, n, c, h, w)));
    }
  }

  /** A dataset on disk (msc_dataset). */
  public static final class Dataset extends Handle {
    private Dataset(Pointer raw) {
      super(raw, C::msc_dataset_free);
    }

    /** Opens the dataset at root in format (e.g. "bigearthnet-v2"); options may be null. */
    public static Dataset open(String root, String format, Options options) {
      PointerByReference out = new PointerByReference();
      try {
        check(C.msc_dataset_open(root, format, rawOrNull(options), out));
      } finally {
        Reference.reachabilityFence(options);
      }
      return new Dataset(out.getValue());
    }

    public int size() {
      return (int) (long) call(C::msc_dataset_size);
    }

    /** Reads the samples at indices into batch. */
    public void fillBatch(long[] indices, Batch batch) {
      try {
        check(C.msc_dataset_fill_batch(live(), indices, indices.length, batch.live()));
      } finally {
        keep(this, batch);
      }
    }
  }
}
