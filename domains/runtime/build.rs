//! Makes the domain linker script `xenolith-domain.ld` findable by every domain binary (each adds
//! `-Txenolith-domain.ld` in its own build script).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=xenolith-domain.ld");
    println!("cargo:rustc-link-search={dir}");
}
