//! Safe Rust bindings of libmosaic (docs/bindings.md, "Rust").
//!
//! The raw C API is `mosaic_sys` (generated from include/mosaic/mosaic.h); this crate
//! wraps the handles in types that free themselves (`Drop`), turns every status into a
//! `Result<T, Error>` carrying the status and the library's message (`msc_last_error`),
//! and takes and returns slices, `&str` and `String`. Whatever it does not wrap is
//! reachable through `mosaic_sys` and the `as_ptr` of each handle.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::ptr;

pub use mosaic_sys as sys;

/// A failed call: the C status (a negative `MSC_E_*` value) and the message the
/// library left for the calling thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", status_string(self.status), self.status, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn owned(s: *const c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        // SAFETY: the library returns NUL-terminated strings valid during the call.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

/// The text of a status code (msc_status_string).
pub fn status_string(status: i32) -> String {
    owned(unsafe { sys::msc_status_string(status) })
}

fn check(status: i32) -> Result<()> {
    if status == sys::MSC_OK {
        Ok(())
    } else {
        Err(Error { status, message: owned(unsafe { sys::msc_last_error() }) })
    }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error {
        status: sys::MSC_E_INVALID_ARGUMENT,
        message: format!("the string {:?} holds a NUL byte", s),
    })
}

/// The library's version, "MAJOR.MINOR.PATCH" (msc_version_string).
pub fn version() -> String {
    owned(unsafe { sys::msc_version_string() })
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $raw:ident, $free:ident) => {
        $(#[$doc])*
        pub struct $name {
            raw: *mut sys::$raw,
        }

        impl $name {
            /// The C handle, still owned by this value.
            pub fn as_ptr(&self) -> *mut sys::$raw {
                self.raw
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: raw came from the library's constructor and is freed once.
                unsafe { sys::$free(self.raw) };
                self.raw = ptr::null_mut();
            }
        }

        // The library's handles may move between threads (docs/conventions.md).
        unsafe impl Send for $name {}
    };
}

handle!(
    /// A set of options (msc_options).
    Options, msc_options, msc_options_free);
handle!(
    /// A model (msc_model): encoders, heads, optimiser state.
    Model, msc_model, msc_model_free);
handle!(
    /// A batch of samples (msc_batch).
    Batch, msc_batch, msc_batch_free);
handle!(
    /// A dataset on disk (msc_dataset).
    Dataset, msc_dataset, msc_dataset_free);

impl Options {
    /// Empty options: every key at its default (msc_options_create).
    pub fn new() -> Result<Options> {
        let mut raw = ptr::null_mut();
        check(unsafe { sys::msc_options_create(&mut raw) })?;
        Ok(Options { raw })
    }

    pub fn set_int(&mut self, key: &str, value: i64) -> Result<()> {
        let k = cstring(key)?;
        check(unsafe { sys::msc_options_set_int(self.raw, k.as_ptr(), value) })
    }

    pub fn set_float(&mut self, key: &str, value: f64) -> Result<()> {
        let k = cstring(key)?;
        check(unsafe { sys::msc_options_set_float(self.raw, k.as_ptr(), value) })
    }

    pub fn set_string(&mut self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstring(key)?, cstring(value)?);
        check(unsafe { sys::msc_options_set_string(self.raw, k.as_ptr(), v.as_ptr()) })
    }

    pub fn get_int(&self, key: &str) -> Result<i64> {
        let k = cstring(key)?;
        let mut v = 0i64;
        check(unsafe { sys::msc_options_get_int(self.raw, k.as_ptr(), &mut v) })?;
        Ok(v)
    }

    pub fn get_float(&self, key: &str) -> Result<f64> {
        let k = cstring(key)?;
        let mut v = 0f64;
        check(unsafe { sys::msc_options_get_float(self.raw, k.as_ptr(), &mut v) })?;
        Ok(v)
    }

    pub fn get_string(&self, key: &str) -> Result<String> {
        let k = cstring(key)?;
        let mut len = 0usize;
        let mut buf = vec![0 as c_char; 64];
        let mut st = unsafe {
            sys::msc_options_get_string(self.raw, k.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut len)
        };
        if st == sys::MSC_E_BUFFER_TOO_SMALL {
            // len is the text's length: once more with room for it
            buf = vec![0 as c_char; len + 1];
            st = unsafe {
                sys::msc_options_get_string(self.raw, k.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut len)
            };
        }
        check(st)?;
        Ok(owned(buf.as_ptr()))
    }
}

impl Model {
    /// A new model with freshly initialised weights (msc_model_create).
    pub fn new(options: &Options) -> Result<Model> {
        let mut raw = ptr::null_mut();
        check(unsafe { sys::msc_model_create(options.raw, &mut raw) })?;
        Ok(Model { raw })
    }

    /// Loads a model file (msc_model_load), with runtime options or None.
    pub fn load(path: &str, runtime: Option<&Options>) -> Result<Model> {
        let p = cstring(path)?;
        let rt = runtime.map_or(ptr::null(), |o| o.raw as *const sys::msc_options);
        let mut raw = ptr::null_mut();
        check(unsafe { sys::msc_model_load(p.as_ptr(), rt, &mut raw) })?;
        Ok(Model { raw })
    }

    /// Saves the model atomically (msc_model_save).
    pub fn save(&self, path: &str) -> Result<()> {
        let p = cstring(path)?;
        check(unsafe { sys::msc_model_save(self.raw, p.as_ptr()) })
    }

    /// Floats of one sample's embedding of kind `which` (sys::MSC_EMBED_*).
    pub fn embedding_size(&self, which: i32) -> Result<usize> {
        let mut size = 0i64;
        check(unsafe { sys::msc_model_embedding_size(self.raw, which, &mut size) })?;
        Ok(size as usize)
    }

    /// The embeddings of the batch's samples, N × embedding_size(which), row-major.
    pub fn embed(&mut self, batch: &Batch, which: i32) -> Result<Vec<f32>> {
        let n = batch.len();
        let mut out = vec![0f32; n * self.embedding_size(which)?];
        check(unsafe {
            sys::msc_embed(self.raw, batch.raw, which, out.as_mut_ptr(), out.len())
        })?;
        Ok(out)
    }

    /// Number of classes C of the classifier (msc_model_class_count).
    pub fn class_count(&self) -> usize {
        unsafe { sys::msc_model_class_count(self.raw) }.max(0) as usize
    }

    /// Per-class probabilities of the batch's samples, N × class_count(), row-major
    /// (msc_predict: sigmoids for a multi-label model, a softmax per row otherwise).
    pub fn predict(&mut self, batch: &Batch) -> Result<Vec<f32>> {
        let mut out = vec![0f32; batch.len() * self.class_count()];
        check(unsafe { sys::msc_predict(self.raw, batch.raw, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> i64 {
        unsafe { sys::msc_model_parameter_count(self.raw) }
    }
}

impl Batch {
    /// An empty batch (msc_batch_create).
    pub fn new() -> Result<Batch> {
        let mut raw = ptr::null_mut();
        check(unsafe { sys::msc_batch_create(&mut raw) })?;
        Ok(Batch { raw })
    }

    /// Samples in the batch.
    pub fn len(&self) -> usize {
        unsafe { sys::msc_batch_size(self.raw) }.max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets a modality's N × C × H × W raw pixel values (copied).
    pub fn set_modality(&mut self, name: &str, nchw: &[f32], n: i64, c: i64, h: i64, w: i64)
        -> Result<()> {
        // (checked: absurd dimensions are a shape error here, not an overflow panic)
        let count = n.checked_mul(c).and_then(|v| v.checked_mul(h)).and_then(|v| v.checked_mul(w));
        if count != Some(nchw.len() as i64) {
            return Err(Error {
                status: sys::MSC_E_SHAPE,
                message: format!("{} floats for {}x{}x{}x{}", nchw.len(), n, c, h, w),
            });
        }
        let k = cstring(name)?;
        check(unsafe { sys::msc_batch_set_modality(self.raw, k.as_ptr(), nchw.as_ptr(), n, c, h, w) })
    }
}

impl Dataset {
    /// Opens a dataset (msc_dataset_open): root, format ("bigearthnet-v2", ...), options.
    pub fn open(root: &str, format: &str, options: Option<&Options>) -> Result<Dataset> {
        let (r, f) = (cstring(root)?, cstring(format)?);
        let o = options.map_or(ptr::null(), |o| o.raw as *const sys::msc_options);
        let mut raw = ptr::null_mut();
        check(unsafe { sys::msc_dataset_open(r.as_ptr(), f.as_ptr(), o, &mut raw) })?;
        Ok(Dataset { raw })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        unsafe { sys::msc_dataset_size(self.raw) }.max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the samples `indices` into `batch` (msc_dataset_fill_batch).
    pub fn fill_batch(&self, indices: &[i64], batch: &mut Batch) -> Result<()> {
        check(unsafe {
            sys::msc_dataset_fill_batch(self.raw, indices.as_ptr(), indices.len() as i64, batch.raw)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard};

    // The tests run on parallel threads; the one that counts the heap must not see the
    // others' allocations, so every test holds this lock.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    // glibc's struct mallinfo2 (glibc >= 2.33; Debian 12 has 2.36): bytes malloc has
    // handed out and not taken back, over every arena.
    #[repr(C)]
    struct Mallinfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    extern "C" {
        fn mallinfo2() -> Mallinfo2;
    }

    fn heap_in_use() -> i64 {
        let m = unsafe { mallinfo2() };
        (m.uordblks + m.hblkhd) as i64
    }

    fn tiny_options() -> Options {
        let mut o = Options::new().unwrap();
        o.set_string("modality.0.encoder", "tiny").unwrap();
        o.set_string("modality.1.encoder", "tiny").unwrap();
        o
    }

    #[test]
    fn a_missing_file_is_the_c_status_and_message() {
        let _g = serial();
        // what the C API itself says for the same call
        let path = CString::new("/nonexistent/model.safetensors").unwrap();
        let mut raw = ptr::null_mut();
        let want = unsafe { sys::msc_model_load(path.as_ptr(), ptr::null(), &mut raw) };
        let want_msg = owned(unsafe { sys::msc_last_error() });
        assert!(want < 0 && raw.is_null());
        let err = Model::load("/nonexistent/model.safetensors", None).err().unwrap();
        assert_eq!(err.status, want);
        assert_eq!(err.message, want_msg);
        assert!(err.to_string().contains("/nonexistent/model.safetensors"));
    }

    #[test]
    fn options_round_trip_and_unknown_keys() {
        let _g = serial();
        let mut o = Options::new().unwrap();
        o.set_int("seed", 1234).unwrap();
        assert_eq!(o.get_int("seed").unwrap(), 1234);
        o.set_float("optim.lr", 0.125).unwrap();
        assert_eq!(o.get_float("optim.lr").unwrap(), 0.125);
        o.set_string("modality.0.encoder", "tiny").unwrap();
        assert_eq!(o.get_string("modality.0.encoder").unwrap(), "tiny");
        let long = "x".repeat(300); // longer than the first buffer
        o.set_string("modality.0.band_names", &long).unwrap();
        assert_eq!(o.get_string("modality.0.band_names").unwrap(), long);
        let e = o.set_int("no.such.key", 1).err().unwrap();
        let k = CString::new("no.such.key").unwrap();
        let want = unsafe { sys::msc_options_set_int(o.as_ptr(), k.as_ptr(), 1) };
        assert_eq!(e.status, want);
        assert!(cstring("a\0b").is_err());
    }

    #[test]
    fn embed_and_predict_check_shapes_and_match_the_c_calls() {
        let _g = serial();
        let o = tiny_options();
        let mut m = Model::new(&o).unwrap();
        drop(o); // the model keeps its own copy
        let d = m.embedding_size(sys::MSC_EMBED_FUSED).unwrap();
        assert!(d > 0);
        let mut b = Batch::new().unwrap();
        assert!(b.set_modality("s1", &[0.0; 3], 1, 2, 2, 2).is_err());
        let s1 = vec![-10.0f32; 2 * 2 * 120 * 120];
        let s2 = vec![1000.0f32; 2 * 12 * 120 * 120];
        b.set_modality("s1", &s1, 2, 2, 120, 120).unwrap();
        b.set_modality("s2", &s2, 2, 12, 120, 120).unwrap();
        let h = m.embed(&b, sys::MSC_EMBED_FUSED).unwrap();
        assert_eq!(h.len(), 2 * d);
        assert!(h.iter().all(|v| v.is_finite()));
        assert_eq!(&h[..d], &h[d..]); // two identical samples
        assert!(b.set_modality("s1", &s1, i64::MAX, 2, 120, 120).is_err());

        // predict = msc_predict itself, into a buffer sized from the C class count
        let c = unsafe { sys::msc_model_class_count(m.as_ptr()) } as usize;
        assert!(c > 0);
        let mut want = vec![0f32; 2 * c];
        let st = unsafe { sys::msc_predict(m.as_ptr(), b.as_ptr(), want.as_mut_ptr(), want.len()) };
        assert_eq!(st, sys::MSC_OK);
        assert_eq!(m.predict(&b).unwrap(), want);
        let empty = Batch::new().unwrap();
        let e = m.predict(&empty).err().unwrap();
        let st = unsafe { sys::msc_predict(m.as_ptr(), empty.as_ptr(), want.as_mut_ptr(), 0) };
        assert_eq!(e.status, st);
    }

    #[test]
    fn dataset_size_and_fill_batch_match_the_c_calls() {
        let _g = serial();
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../examples/data/bigearthnet-v2");
        assert!(Dataset::open("/nonexistent", "bigearthnet-v2", None).is_err());
        let ds = Dataset::open(data, "bigearthnet-v2", None).unwrap();
        let n = ds.len();
        assert!(n > 0);
        assert_eq!(n as i64, unsafe { sys::msc_dataset_size(ds.as_ptr()) });
        let mut b = Batch::new().unwrap();
        let e = ds.fill_batch(&[], &mut b).err().unwrap();
        let st = unsafe { sys::msc_dataset_fill_batch(ds.as_ptr(), ptr::null(), 0, b.as_ptr()) };
        assert_eq!(e.status, st);
        ds.fill_batch(&[n as i64 - 1, 0], &mut b).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(unsafe { sys::msc_batch_size(b.as_ptr()) }, 2);
        let e = ds.fill_batch(&[n as i64], &mut b).err().unwrap(); // out of range
        let idx = [n as i64];
        let st = unsafe { sys::msc_dataset_fill_batch(ds.as_ptr(), idx.as_ptr(), 1, b.as_ptr()) };
        assert_eq!(e.status, st);
    }

    #[test]
    fn drop_frees_the_c_handles() {
        let _g = serial();
        let o = tiny_options();
        let one = {
            let m = Model::new(&o).unwrap();
            m.parameter_count() * 4 // bytes of its weights, a lower bound of its memory
        };
        assert!(one > 0);
        const N: i64 = 8;
        // Held, N models take at least N times their weights (the measurement sees them)...
        let before = heap_in_use();
        let held: Vec<Model> = (0..N).map(|_| Model::new(&o).unwrap()).collect();
        let grown = heap_in_use() - before;
        assert!(grown >= N * one, "{} bytes for {} models of {} bytes", grown, N, one);
        // ...dropped, they give it back: what stays is less than one model's weights.
        drop(held);
        let kept = heap_in_use() - before;
        assert!(kept < one, "{} bytes still held after dropping {} models", kept, N);
        // The same for batches, which copy their pixels.
        let pixels = vec![1.0f32; 2 * 120 * 120];
        let one = (pixels.len() * 4) as i64;
        let before = heap_in_use();
        let held: Vec<Batch> = (0..N)
            .map(|_| {
                let mut b = Batch::new().unwrap();
                b.set_modality("s1", &pixels, 1, 2, 120, 120).unwrap();
                b
            })
            .collect();
        let grown = heap_in_use() - before;
        assert!(grown >= N * one, "{} bytes for {} batches of {} bytes", grown, N, one);
        drop(held);
        let kept = heap_in_use() - before;
        assert!(kept < one, "{} bytes still held after dropping {} batches", kept, N);
    }
}
