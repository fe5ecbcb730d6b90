//! The shim this binary carries: a static `umbilical-shim` built by
//! `build.rs` for this binary's architecture, copied into a container or
//! to a far host that has no shim (nothing to install there).

/// Its bytes; empty where none was built (a non-Linux target, a machine
/// without the static C library, `UMBILICAL_EMBED_SHIM=0`).
const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/umbilical-shim"));

/// The carried shim, if this build has one.
pub fn shim() -> Option<&'static [u8]> {
    (!SHIM.is_empty()).then_some(SHIM)
}
