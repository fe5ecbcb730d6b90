//! Builds the shim the CLI carries: `umbilical-shim`, linked static, for
//! the target's architecture, embedded in the `umbilical` binary.
//!
//! Why: a container's image or a far host may lack the C library this
//! binary was linked against (a musl or busybox image, a distroless one,
//! an older glibc), and the shim must run there. A static build runs on
//! any Linux of its architecture, and carrying it means nothing has to be
//! built or installed by the user (issue #27; see docs/shim-anywhere.md for
//! the choice and its cost).
//!
//! How: a second cargo, run here, builds a one-line package depending on
//! the `umbilical` library (the workspace's own, or the one next to this
//! package in the registry) with `-C target-feature=+crt-static` for this
//! target, in a target directory of its own beside ours (so it shares
//! nothing with, and waits for no lock of, the build that runs this). A
//! build that cannot link static (no `libc.a` on this machine) or a
//! non-Linux target carries no shim: the CLI then says so where it would
//! have used it.
//!
//! `UMBILICAL_EMBED_SHIM`: unset, build it; `0`, carry none; a path, carry
//! that file (a packager's own static build).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=UMBILICAL_EMBED_SHIM");
    let out = PathBuf::from(env("OUT_DIR"));
    let embedded = out.join("umbilical-shim");
    let shim = match choose() {
        Ok(shim) => shim,
        Err(why) => {
            println!("cargo:warning=umbilical carries no shim for containers and far hosts: {why}");
            None
        }
    };
    let bytes = shim.map(|path| std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())));
    std::fs::write(&embedded, bytes.unwrap_or_default()).expect("writing the embedded shim");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// The static shim to embed, `None` where none is wanted.
fn choose() -> Result<Option<PathBuf>, String> {
    match std::env::var_os("UMBILICAL_EMBED_SHIM") {
        Some(v) if v == "0" => return Ok(None),
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            return Ok(Some(path));
        }
        _ => {}
    }
    if env("CARGO_CFG_TARGET_OS") != "linux" {
        return Ok(None);
    }
    let library = library_dir()?;
    for watched in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", library.join(watched).display());
    }
    build(&library).map(Some)
}

/// The `umbilical` library's package: the workspace's sibling, or the
/// registry's copy of the same version beside this one.
fn library_dir() -> Result<PathBuf, String> {
    let here = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let parent = here.parent().ok_or("this package has no parent directory")?;
    let candidates = [parent.join("umbilical"), parent.join(format!("umbilical-{}", env("CARGO_PKG_VERSION")))];
    candidates
        .iter()
        .find(|dir| dir.join("src/bin/umbilical-shim.rs").is_file())
        .cloned()
        .ok_or_else(|| format!("the umbilical library's source is not beside this package ({})", parent.display()))
}

/// Builds the static shim with a cargo of its own; the path of the binary.
fn build(library: &Path) -> Result<PathBuf, String> {
    let out = PathBuf::from(env("OUT_DIR"));
    let target = env("TARGET");
    // OUT_DIR is <target dir>[/<triple>]/<profile>/build/<package>/out: the
    // shim's own target directory goes beside the profiles, shared by them.
    let target_dir = out.ancestors().nth(4).ok_or("OUT_DIR is not where cargo puts it")?.join("embedded-shim");
    let package = out.join("embedded-shim-package");
    std::fs::create_dir_all(package.join("src")).map_err(|e| e.to_string())?;
    let manifest = format!(
        "[package]\nname = \"umbilical-embedded-shim\"\nversion = \"{}\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\numbilical = {{ path = {:?}, default-features = false }}\n\n\
         [profile.release]\nopt-level = \"s\"\nstrip = true\ncodegen-units = 16\n\n[workspace]\n",
        env("CARGO_PKG_VERSION"),
        library.display().to_string()
    );
    write_if_changed(&package.join("Cargo.toml"), manifest.as_bytes())?;
    let main = std::fs::read(library.join("src/bin/umbilical-shim.rs")).map_err(|e| e.to_string())?;
    write_if_changed(&package.join("src/main.rs"), &main)?;
    // The workspace's lock, where there is one: the same versions as the
    // library this binary links, and no index to consult.
    if let Some(lock) = library.parent().and_then(Path::parent).map(|root| root.join("Cargo.lock"))
        && lock.is_file()
    {
        println!("cargo:rerun-if-changed={}", lock.display());
        let bytes = std::fs::read(&lock).map_err(|e| e.to_string())?;
        write_if_changed(&package.join("Cargo.lock"), &bytes)?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--target", &target, "--manifest-path"])
        .arg(package.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's flags and wrappers are for it (clippy's driver,
    // coverage, another target's flags): the shim gets only static linking.
    for var in [
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building it static failed ({status}); is the static C library (libc.a) installed?"));
    }
    Ok(target_dir.join(&target).join("release/umbilical-embedded-shim"))
}

/// Writes `bytes` unless the file holds them already: a rewrite would
/// have the nested cargo rebuild the shim every time.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}
