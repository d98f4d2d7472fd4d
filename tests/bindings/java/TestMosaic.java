// The Java binding against the C API (tests/bindings/java.cmake): errors carry the C
// call's own status and message, close() twice is safe, options round-trip, identical
// samples embed to identical rows.
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
    if (failures > 0) System.exit(1);
    System.out.println("TestMosaic: all checks passed (libmosaic " + Mosaic.version() + ")");
  }
}
