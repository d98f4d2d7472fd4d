// embed MODEL DATA OUT: the fused embeddings of every sample of the BigEarthNet v2
// dataset at DATA through the Rust binding, written to OUT as raw little-endian
// float32 — what tests/bindings/embed_ref.c does in C (the parity test compares them).
use std::io::Write;

fn run(model: &str, data: &str, out: &str) -> mosaic::Result<usize> {
    let mut m = mosaic::Model::load(model, None)?;
    let ds = mosaic::Dataset::open(data, "bigearthnet-v2", None)?;
    let indices: Vec<i64> = (0..ds.len() as i64).collect();
    let mut batch = mosaic::Batch::new()?;
    ds.fill_batch(&indices, &mut batch)?;
    let h = m.embed(&batch, mosaic::sys::MSC_EMBED_FUSED)?;
    let mut bytes = Vec::with_capacity(h.len() * 4);
    for v in &h {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let mut f = std::fs::File::create(out).expect("cannot create the output file");
    f.write_all(&bytes).expect("cannot write the output file");
    Ok(indices.len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: embed MODEL DATA OUT");
        std::process::exit(2);
    }
    match run(&args[1], &args[2], &args[3]) {
        Ok(n) => println!("embed (Rust, libmosaic {}): {} samples -> {}", mosaic::version(), n, args[3]),
        Err(e) => {
            eprintln!("embed: {}", e);
            std::process::exit(1);
        }
    }
}
