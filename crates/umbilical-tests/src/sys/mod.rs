//! OS calls for tests.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
