//! `umbilical-shim`: the shim alone, small enough to build static and copy
//! into a container (see `Command::shim_source`). A launcher starts it as
//! `umbilical-shim shim --umbilical-rendezvous PATH` or `... shim
//! --umbilical-bridge SOCKET`; it is never run by hand.
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
//!     -p umbilical --bin umbilical-shim --target x86_64-unknown-linux-gnu
//! ```

fn main() {
    umbilical::shim::run_if_invoked();
    eprintln!(
        "umbilical-shim {}: the shim that umbilical's launchers start; not meant to be run by hand",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
