//! Where the shim that is copied somewhere comes from: a file named by
//! [`Command::shim_source`](crate::Command::shim_source), the bytes of one
//! the caller carries ([`Command::shim_source_bytes`](crate::Command::shim_source_bytes),
//! as the `umbilical` CLI carries a static build), or this executable.

use std::borrow::Cow;
use std::path::PathBuf;

use crate::error::Error;
use crate::options::Options;
use crate::shim::elf;

/// The shim to copy into a container or to a far host.
pub(crate) enum Source {
    /// A file on this host.
    File(PathBuf),
    /// A shim the caller carries in memory.
    Carried(Cow<'static, [u8]>),
}

impl Source {
    /// `shim_source`, else the carried bytes, else this executable.
    pub(crate) fn of(opts: &Options) -> Result<Source, Error> {
        if let Some(path) = &opts.shim_source {
            return Ok(Source::File(path.clone()));
        }
        if let Some(bytes) = &opts.shim_source_bytes {
            return Ok(Source::Carried(bytes.clone()));
        }
        opts.shim_source().map(Source::File)
    }

    /// Whether it can run where the C library may differ.
    pub(crate) fn linkage(&self) -> elf::Linkage {
        match self {
            Source::File(path) => elf::linkage(path),
            Source::Carried(bytes) => elf::linkage_of(bytes),
        }
    }
}

impl std::fmt::Display for Source {
    /// Where it came from, as `-v` and errors say it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Carried(bytes) => write!(f, "the shim this program carries ({} bytes)", bytes.len()),
        }
    }
}
