//! Links with the domain linker script from xenolith-runtime (bare metal only).
fn main() {
    if std::env::var("TARGET").is_ok_and(|target| target.starts_with("aarch64-unknown-none")) {
        println!("cargo:rustc-link-arg-bins=-Txenolith-domain.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
