//! Program lookup, done in the parent so that "not found" and "not
//! executable" are told apart before anything is spawned.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::Access;

/// Used when the program's environment has no `PATH`, as glibc's `execvp`.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

pub(crate) enum Resolved {
    /// The path to execute, as the program sees it after changing to its
    /// working directory: a relative candidate stays relative, since the
    /// exec happens after the `chdir`.
    Found(PathBuf),
    NotFound,
    /// A candidate exists but cannot be executed (a directory, no `x` bit).
    NotExecutable(PathBuf),
}

/// Resolves `program` as `execvp` would, against the child's `PATH` and with
/// relative names taken from the child's working directory `cwd`.
///
/// Candidates are checked from here, where the child's directory is
/// `cwd` joined to ours; the path returned is the one to execute from
/// inside `cwd` (joining it again there would look in `cwd/cwd`).
pub(crate) fn resolve(program: &OsStr, path_var: Option<&OsStr>, cwd: Option<&Path>) -> Resolved {
    let seen_from_here = |p: &Path| match cwd {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    };
    if program.as_bytes().contains(&b'/') {
        let candidate = PathBuf::from(program);
        let here = seen_from_here(&candidate);
        return match check(&here) {
            Check::Ok => Resolved::Found(candidate),
            Check::Missing => Resolved::NotFound,
            Check::NotExecutable => Resolved::NotExecutable(here),
        };
    }
    let path_var: OsString = path_var.map_or_else(|| DEFAULT_PATH.into(), OsStr::to_owned);
    let mut denied = None;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) };
        let candidate = dir.join(program);
        let here = seen_from_here(&candidate);
        match check(&here) {
            Check::Ok => return Resolved::Found(candidate),
            Check::Missing => {}
            Check::NotExecutable => {
                denied.get_or_insert(here);
            }
        }
    }
    denied.map_or(Resolved::NotFound, Resolved::NotExecutable)
}

enum Check {
    Ok,
    Missing,
    NotExecutable,
}

/// One `access(X_OK)` per candidate: a miss, the common case while walking
/// `PATH`, costs a single syscall. Only a hit is `stat`ed, to refuse
/// directories (which pass an `X_OK` check).
fn check(candidate: &Path) -> Check {
    match rustix::fs::access(candidate, Access::EXEC_OK) {
        Err(
            rustix::io::Errno::NOENT
            | rustix::io::Errno::NOTDIR
            | rustix::io::Errno::LOOP
            | rustix::io::Errno::NAMETOOLONG,
        ) => Check::Missing,
        // EACCES may mean "no x bit" or "cannot search a directory on the
        // way" (another user's PATH entry): only a file we can see exists.
        Err(_) => match std::fs::metadata(candidate) {
            Ok(_) => Check::NotExecutable,
            Err(_) => Check::Missing,
        },
        Ok(()) => match std::fs::metadata(candidate) {
            Ok(m) if m.is_file() => Check::Ok,
            Ok(_) => Check::NotExecutable,
            Err(_) => Check::Missing,
        },
    }
}
