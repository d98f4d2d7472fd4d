// The Java binding against the C API (tests/bindings/java.cmake): errors carry the C
// call's own status and message, close() twice is safe, options round-trip (non-ASCII
// text too, as UTF-8 whatever the JVM's charset: the test runs with LC_ALL=C), identical
// samples embed to identical rows, and the generated Structures (msc_vi_bands,
// msc_rp_params with its pointer members) have the C layout: the indices come out as
// their formulas (mosaic.h) give them; a log callback (a generated Callback interface)
// receives the library's message.
import com.sun.jna.Memory;
import com.sun.jna.ptr.PointerByReference;
import java.util.Arrays;
import org.libmosaic.Mosaic;
import org.libmosaic.MosaicException;
import org.libmosaic.MosaicLibrary;

public class TestMosaic {
  static int failures = 0;

  static void check(boolean ok, String what) {
    if (!ok) {
      System.err.println("FAIL: " + what);
      failures++;
    }
  }

  public static void main(String[] args) {
    MosaicLibrary c = MosaicLibrary.INSTANCE;
    String path = "/nonexistent/model.safetensors";
    int want = c.msc_model_load(path, null, new PointerByReference());
    String wantMsg = c.msc_last_error();
    check(want < 0, "the C call fails");
    try {
      Mosaic.Model.load(path, null);
      check(false, "a missing file loaded");
    } catch (MosaicException e) {
      check(e.status() == want, "status " + e.status() + " != " + want);
      check(e.getMessage().equals(wantMsg), "message " + e.getMessage() + " != " + wantMsg);
      check(e.toString().contains(path), "toString names the file");
    }
    Mosaic.Options o = new Mosaic.Options();
    {
      o.set("seed", 99L);
      check(o.getInt("seed") == 99, "seed round trip");
      char[] x = new char[300];
      Arrays.fill(x, 'x');
      String longName = new String(x); // longer than the first buffer
      o.set("modality.0.band_names", longName);
      check(o.getString("modality.0.band_names").equals(longName), "long string round trip");
      String text = "bande \u00e9\u00e8 \u03c1\u2088 \u6ce2\u6bb5"; // 2- and 3-byte UTF-8
      o.set("modality.0.band_names", text);
      check(o.getString("modality.0.band_names").equals(text), "non-ASCII round trip");
      try {
        o.set("no.such.key", 1L);
        check(false, "an unknown key was accepted");
      } catch (MosaicException e) {
        check(e.status() == c.msc_options_set_int(o.raw(), "no.such.key", 1), "unknown key status");
      }
      o.close();
      o.close(); // safe
      check(o.raw() == null, "close clears the handle");
    }
    try (Mosaic.Options t = new Mosaic.Options()
            .set("modality.0.encoder", "tiny").set("modality.1.encoder", "tiny");
        Mosaic.Model m = Mosaic.Model.create(t);
        Mosaic.Batch b = new Mosaic.Batch()) {
      int p = 120 * 120;
      float[] s1 = new float[2 * 2 * p], s2 = new float[2 * 12 * p];
      for (int i = 0; i < 12 * p; i++) s2[i] = s2[12 * p + i] = i % 3000;
      b.setModality("s1", s1, 2, 2, 120, 120);
      b.setModality("s2", s2, 2, 12, 120, 120);
      float[] h = m.embed(b, MosaicLibrary.MSC_EMBED_FUSED);
      int d = m.embeddingSize(MosaicLibrary.MSC_EMBED_FUSED);
      check(h.length == 2 * d, "embedding length");
      check(Arrays.equals(Arrays.copyOfRange(h, 0, d), Arrays.copyOfRange(h, d, 2 * d)),
          "identical samples, identical rows");
      try {
        b.setModality("s1", new float[3], 1, 2, 2, 2);
        check(false, "a short array was accepted");
      } catch (MosaicException e) {
        check(e.status() == MosaicLibrary.MSC_E_SHAPE, "short array: MSC_E_SHAPE");
      }
    }
    {
      String odd = "/nonexistent/mod\u00e8le \u03c1.safetensors";
      try {
        Mosaic.Model.load(odd, null);
        check(false, "a missing file loaded");
      } catch (MosaicException e) {
        check(e.getMessage().contains(odd), "a non-ASCII path in the message: " + e.getMessage());
      }
    }
    structs(c);
    callback(c);
    if (failures > 0) System.exit(1);
    System.out.println("TestMosaic: all checks passed (libmosaic " + Mosaic.version() + ")");
  }

  /** NDVI of a T x 5 x 1 series with B4 and B8 in channels 1 and 3 and an offset, through
   * msc_vi_bands; then its recurrence plot (continuous, S = T) through msc_rp_params,
   * whose indices member is native memory. Expected values: the formulas of mosaic.h. */
  static void structs(MosaicLibrary c) {
    int t = 4, ch = 5;
    float[] x = new float[t * ch];
    for (int i = 0; i < t; i++) {
      x[i * ch + 1] = 1500 + 100 * i; // B4
      x[i * ch + 3] = 3000 + 700 * i * i; // B8
    }
    MosaicLibrary.msc_vi_bands bands = new MosaicLibrary.msc_vi_bands();
    bands.struct_size = bands.size();
    bands.b2 = bands.b3 = bands.b12 = -1;
    bands.b4 = 1;
    bands.b8 = 3;
    bands.scale = 10000;
    bands.offset = -1000;
    float[] ndvi = new float[t];
    byte[] valid = new byte[t];
    int st = c.msc_vegetation_index(MosaicLibrary.MSC_VI_NDVI, x, t, ch, 1, bands, ndvi, valid);
    check(st == MosaicLibrary.MSC_OK, "msc_vegetation_index: " + c.msc_last_error());
    for (int i = 0; i < t; i++) {
      double r4 = (x[i * ch + 1] - 1000.0) / 10000, r8 = (x[i * ch + 3] - 1000.0) / 10000;
      float want = (float) ((r8 - r4) / (r8 + r4));
      check(Math.abs(ndvi[i] - want) <= 1e-6 && valid[i] == 1,
          "NDVI[" + i + "] " + ndvi[i] + " != " + want);
    }
    MosaicLibrary.msc_rp_params params = new MosaicLibrary.msc_rp_params();
    params.struct_size = params.size();
    params.n_indices = 1;
    Memory indices = new Memory(4);
    indices.setInt(0, MosaicLibrary.MSC_VI_NDVI);
    params.indices = indices;
    float[] plot = new float[t * t];
    st = c.msc_recurrence_plots(x, t, ch, 1, 1, bands, params, new long[] {0, 0}, 1, plot, null);
    check(st == MosaicLibrary.MSC_OK, "msc_recurrence_plots: " + c.msc_last_error());
    for (int i = 0; i < t; i++)
      for (int j = 0; j < t; j++)
        check(Math.abs(plot[i * t + j] - Math.abs(ndvi[i] - ndvi[j])) <= 1e-6,
            "plot[" + i + "][" + j + "] = " + plot[i * t + j]);
    params.struct_size = 4; // too small: the C API's error, through the binding's class
    try {
      Mosaic.check(c.msc_recurrence_plots(x, t, ch, 1, 1, bands, params, new long[] {0, 0}, 1,
          plot, null));
      check(false, "a struct_size too small was accepted");
    } catch (MosaicException e) {
      check(e.status() == MosaicLibrary.MSC_E_INVALID_ARGUMENT, "struct_size: " + e);
    }
  }

  /** msc_backend_select("auto") logs at MSC_LOG_DEBUG when it settles on the CPU
   * (lib/backend/registry.c); the message reaches the Java callback as a String. */
  static void callback(MosaicLibrary c) {
    java.util.List<String> got = new java.util.ArrayList<>();
    MosaicLibrary.MscLogFn fn = (level, message, user) -> got.add(level + " " + message);
    check(c.msc_set_log_callback(fn, null, MosaicLibrary.MSC_LOG_DEBUG) == MosaicLibrary.MSC_OK,
        "msc_set_log_callback");
    PointerByReference chosen = new PointerByReference();
    int st = c.msc_backend_select("auto", chosen);
    c.msc_set_log_callback(null, null, MosaicLibrary.MSC_LOG_ERROR);
    check(st == MosaicLibrary.MSC_OK, "msc_backend_select: " + c.msc_last_error());
    String name = chosen.getValue().getString(0, "UTF-8");
    if (name.equals("cpu"))
      check(got.stream().anyMatch(m -> m.startsWith(MosaicLibrary.MSC_LOG_DEBUG
                + " backend 'auto' resolved to 'cpu'")), "log messages: " + got);
  }
}
