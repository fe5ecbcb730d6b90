//! cfg aliases for OS families, so the sources name a capability once
//! instead of repeating lists of target OSes.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(kqueue)");
    println!("cargo:rustc-check-cfg=cfg(apple)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "macos" | "ios" | "freebsd" | "netbsd" | "openbsd" | "dragonfly") {
        println!("cargo:rustc-cfg=kqueue");
    }
    if matches!(os.as_str(), "macos" | "ios") {
        println!("cargo:rustc-cfg=apple");
    }
}
