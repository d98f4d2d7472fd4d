// The Java binding against the C API (tests/bindings/java.cmake): errors carry the C
// call's own status and message, close() twice is safe, options round-trip, identical
// samples embed to identical rows, a struct with pointer fields reaches C intact.
import com.sun.jna.Memory;
import com.sun.jna.Pointer;
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

  /** msc_rp_params has pointer fields (indices, days): the generated Structure must lay
   * them out as C does. The continuous plot of a 1-pixel NDVI series is |v_i - v_j|,
   * with v from msc_vegetation_index. */
  static void recurrencePlots(MosaicLibrary c) {
    int t = 3, ch = 10; // ch: the PASTIS band table's channels (bands = NULL)
    float[] x = new float[t * ch];
    for (int i = 0; i < x.length; i++) x[i] = 500 + (i * 7919) % 3000;
    float[] v = new float[t];
    check(c.msc_vegetation_index(MosaicLibrary.MSC_VI_NDVI, x, t, ch, 1, null, v, null)
        == MosaicLibrary.MSC_OK, "msc_vegetation_index: " + c.msc_last_error());
    MosaicLibrary.msc_rp_params p = new MosaicLibrary.msc_rp_params();
    p.struct_size = p.size();
    p.n_indices = 1;
    p.indices = new Memory(4);
    p.indices.setInt(0, MosaicLibrary.MSC_VI_NDVI);
    p.size = 0; // S = T
    p.days = Pointer.NULL;
    float[] out = new float[t * t];
    byte[] valid = new byte[1];
    int st = c.msc_recurrence_plots(x, t, ch, 1, 1, null, p, new long[] {0, 0}, 1, out, valid);
    check(st == MosaicLibrary.MSC_OK, "msc_recurrence_plots: " + c.msc_last_error());
    check(valid[0] == 1, "the plot is valid");
    for (int i = 0; i < t; i++)
      for (int j = 0; j < t; j++)
        check(Math.abs(out[i * t + j] - Math.abs(v[i] - v[j])) <= 1e-6f,
            "R[" + i + "][" + j + "] = " + out[i * t + j] + ", |v_i - v_j| = " + Math.abs(v[i] - v[j]));
    check(Math.abs(v[0] - v[1]) > 1e-3f, "the series is not constant");
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
    recurrencePlots(c);
    if (failures > 0) System.exit(1);
    System.out.println("TestMosaic: all checks passed (libmosaic " + Mosaic.version() + ")");
  }
}
