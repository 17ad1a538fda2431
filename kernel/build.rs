//! Links the bare-metal core with its linker script. Host builds (unit tests, the host tool's use of
//! the portable library) get no linker arguments.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    if target.starts_with("aarch64-unknown-none") {
        let script = format!("{dir}/src/arch/aarch64/kernel.ld");
        println!("cargo:rerun-if-changed={script}");
        println!("cargo:rustc-link-arg-bins=-T{script}");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
