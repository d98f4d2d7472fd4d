// Embed MODEL DATA OUT: the fused embeddings of every sample of the BigEarthNet v2
// dataset at DATA through the Java binding, written to OUT as raw little-endian float32
// — what tests/bindings/embed_ref.c does in C (the parity test compares them).
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.libmosaic.Mosaic;
import org.libmosaic.MosaicException;
import org.libmosaic.MosaicLibrary;

public class Embed {
  public static void main(String[] args) throws IOException {
    if (args.length != 3) {
      System.err.println("usage: Embed MODEL DATA OUT");
      System.exit(2);
    }
    try (Mosaic.Model model = Mosaic.Model.load(args[0], null);
        Mosaic.Dataset ds = Mosaic.Dataset.open(args[1], "bigearthnet-v2", null);
        Mosaic.Batch batch = new Mosaic.Batch()) {
      long[] idx = new long[ds.size()];
      for (int i = 0; i < idx.length; i++) idx[i] = i;
      ds.fillBatch(idx, batch);
      float[] h = model.embed(batch, MosaicLibrary.MSC_EMBED_FUSED);
      ByteBuffer bytes = ByteBuffer.allocate(4 * h.length).order(ByteOrder.LITTLE_ENDIAN);
      for (float v : h) bytes.putFloat(v);
      try (FileOutputStream f = new FileOutputStream(args[2])) {
        f.write(bytes.array());
      }
      System.out.println("Embed (Java, libmosaic " + Mosaic.version() + "): " + idx.length
          + " samples -> " + args[2]);
    } catch (MosaicException e) {
      System.err.println("Embed: " + e);
      System.exit(1);
    }
  }
}
