//! The only place with `unsafe` and OS calls. One module per OS family, with
//! the same inner names, selected here and nowhere else.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(not(unix))]
compile_error!(
    "umbilical's backend for this OS is not written yet: Unix (Linux, macOS, BSD) is supported; \
     the Windows backend is tracked as its own piece of work"
);
