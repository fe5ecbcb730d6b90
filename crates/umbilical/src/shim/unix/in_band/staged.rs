//! A carried shim written where the container engine's `cp` can read it.
//!
//! `docker cp` and `podman cp` copy a file by path (a `/proc/self/fd`
//! path is a symlink, which they would copy as one), so a shim held in
//! memory is written to a directory of the caller's own, mode 0700 in the
//! temporary directory, under a random name that `mkdir` fails on if
//! someone took it. It is removed as soon as the copy is made or has
//! failed; only a caller killed during the copy leaves it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::shim::source::Source;

/// A file holding the shim to copy, removed on drop if we wrote it.
pub(super) struct Staged {
    path: PathBuf,
    /// The private directory we made for it.
    dir: Option<PathBuf>,
}

impl Staged {
    /// The source's own file, or the carried bytes written to a private
    /// one.
    pub(super) fn of(source: &Source) -> Result<Staged, Error> {
        let bytes = match source {
            Source::File(path) => {
                let path = std::fs::canonicalize(path).map_err(|e| {
                    Error::new(ErrorKind::ShimFailed, format!("cannot find the shim {}: {e}", path.display()), Some(e))
                })?;
                return Ok(Staged { path, dir: None });
            }
            Source::Carried(bytes) => bytes,
        };
        let fail = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::ShimFailed,
                format!("cannot stage the carried shim for the copy: {what}: {e}"),
                Some(e),
            )
        };
        let name = crate::shim::os::remote::random_name().map_err(|e| fail("naming it", e))?;
        // Canonical: the engine resolves the path itself, and a temporary
        // directory behind a symlink is still ours to name.
        let tmp = std::fs::canonicalize(std::env::temp_dir()).map_err(|e| fail("the temporary directory", e))?;
        let dir = tmp.join(format!("umbilical-shim-{name}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| fail("its directory", e))?;
        let staged = Staged { path: dir.join("umbilical-shim"), dir: Some(dir) };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&staged.path)
            .map_err(|e| fail("its file", e))?;
        file.write_all(bytes).and_then(|()| file.sync_data()).map_err(|e| fail("writing it", e))?;
        Ok(staged)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_dir(dir);
        }
    }
}
