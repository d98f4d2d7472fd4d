// Links libmosaic: from MOSAIC_LIB_DIR when it is set (a build tree, or a prefix's lib
// directory), else from the linker's default paths (an installed libmosaic).
fn main() {
    println!("cargo:rerun-if-env-changed=MOSAIC_LIB_DIR");
    if let Ok(dir) = std::env::var("MOSAIC_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
    }
    println!("cargo:rustc-link-lib=dylib=mosaic");
}
