//! OS calls for tests.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// Sets an environment variable. Only for a process that has one thread
/// (the helper program acting as a host), where nothing reads the
/// environment concurrently.
pub fn set_env_single_threaded(key: &str, value: &str) {
    // SAFETY: the caller is single-threaded, so no other thread reads or
    // writes the environment at the same time.
    unsafe { std::env::set_var(key, value) };
}
