//! Through ssh, the shim on a far host that does not have it: copied over
//! the same kind of session, used once, gone.
//!
//! The launch's own session looks first: `sh -c` runs the shim at the
//! caller's path if it is there, else ends with a code of its own
//! (`shim/unix/mod.rs`), so a far host that has the shim costs nothing more.
//! One that lacks it is asked what it is (`uname -sm`); if it is the
//! caller's OS and architecture, a second session writes the shim to copy
//! (`shim_source`, else the bytes the caller carries, else this
//! executable: see `shim/source.rs`) into a fresh directory of the far
//! user's, of a random name the caller chose (`mkdir -m 700`, which fails on a name someone took; `umask 077`:
//! nobody else there can read, replace or rename it) and answers with its
//! path and length, which must be ours. A copy whose session was cut
//! short is removed by name, even one that finished just as the deadline
//! passed. The launch then runs again from
//! the copy, with `--umbilical-remove`: the shim removes it the moment it
//! starts; a launch that fails before it ran removes the copy through one
//! more session. A far host of another OS or architecture is refused,
//! naming `shim_path`.
//!
//! In band (`in_band.rs`), the bridge's session looks instead, the copy is
//! made as the bridge's user, and the bridge removes it when it ends.
//! Beyond a chain's last hop the program's user runs it too (ssh, sudo,
//! runuser to another user): then the copy's directory is `0711` and the
//! file `0755`, still the bridge's user's alone to replace.
//!
//! The cost, only where the far host lacks the shim: the first session,
//! two short ones, and the copy's transfer.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::remote::{helper, run_helper as run};
use crate::error::{Error, ErrorKind};
use crate::launcher::Launcher;
use crate::shim::source::Source;

/// Where the helper sessions place the shim, as their errors say it.
const FAR: &str = "on the far host";

/// Copies `source` to the far host (which the launch's own session found
/// without a shim at `looked_at`) and returns the copy's far path: see the
/// module docs. `shared`: the copy's user (the in-band bridge's, root)
/// lets another (the program's user, beyond the chain's last hop) run it:
/// its directory `0711`, the file `0755`, still nobody else's to replace.
pub(super) fn place(
    launcher: &Launcher,
    looked_at: &Path,
    source: &Source,
    shared: bool,
    deadline: Instant,
) -> Result<OsString, Error> {
    let name = launcher.name();
    let answer = run(launcher, &helper("uname -sm", &[]), &[], deadline, FAR)?;
    let far = answer.lines().next().unwrap_or("").trim().to_string();
    if !same_platform(&far) {
        return Err(Error::new(
            ErrorKind::ShimFailed,
            format!(
                "the far host has no shim at {} and is {far:?}, while this one is built for {} {}: \
                 install one built for it there and name it with shim_path (--shim-path)",
                looked_at.display(),
                std::env::consts::OS,
                std::env::consts::ARCH,
            ),
            None,
        ));
    }
    let bytes = source.bytes()?;
    // The copy removes itself unless it is whole: a session cut short
    // (our deadline, a dropped connection) leaves nothing behind. Its
    // directory's name is ours (mkdir fails on a name someone else took):
    // a copy that finished just as our deadline passed, its answer unread,
    // is still found and removed.
    let dir = format!(
        "umbilical-{}",
        super::remote::random_name().map_err(|e| Error::new(
            ErrorKind::Io,
            format!("cannot name the shim's far copy: {e}"),
            Some(e)
        ))?
    );
    let copy = helper(
        "umask 077; d=\"${TMPDIR:-/tmp}/$2\"; mkdir -m \"$3\" -- \"$d\" || exit 1; \
         trap 'rm -rf \"$d\"; exit 1' HUP INT TERM PIPE; \
         cat > \"$d/shim\" && [ \"$(wc -c < \"$d/shim\")\" -eq \"$1\" ] && chmod \"$4\" \"$d/shim\" \
         || { rm -rf \"$d\"; exit 1; }; \
         printf '%s %s\\n' \"$1\" \"$d/shim\"",
        &[
            bytes.len().to_string().into(),
            dir.clone().into(),
            if shared { "711" } else { "700" }.into(),
            if shared { "755" } else { "700" }.into(),
        ],
    );
    let answer = match run(launcher, &copy, &bytes, deadline, FAR) {
        Ok(answer) => answer,
        Err(e) => {
            remove_named(launcher, &dir);
            return Err(e);
        }
    };
    let line = answer.lines().next().unwrap_or("").trim();
    let (len, path) = line.split_once(' ').unwrap_or(("", ""));
    let path = OsString::from(path);
    if len.trim().parse::<u64>().ok() != Some(bytes.len() as u64) || !path.as_bytes().starts_with(b"/") {
        if !path.is_empty() {
            remove(launcher, &path);
        }
        return Err(Error::new(
            ErrorKind::ShimFailed,
            format!("copying the shim to the far host through {name} went wrong (it answered {line:?})"),
            None,
        ));
    }
    tracing::info!(launcher = %name, from = %source, far = %path.to_string_lossy(), bytes = bytes.len(), "the shim is copied to the far host");
    Ok(path)
}

/// Removes a copy that never ran, and its directory, through `launcher`
/// (best effort, bounded).
pub(super) fn remove(launcher: &Launcher, path: &OsString) {
    let spec =
        helper("rm -f -- \"$1\" && { [ ! -d \"${1%/*}\" ] || rmdir -- \"${1%/*}\"; }", std::slice::from_ref(path));
    if let Err(e) = run(launcher, &spec, &[], Instant::now() + Duration::from_secs(10), FAR) {
        tracing::warn!("could not remove the shim's copy {} through {}: {e}", path.to_string_lossy(), launcher.name());
    }
}

/// Removes the copy in the far directory `dir` (under the far session's
/// `TMPDIR`, as the copy was made), if there is one (best effort,
/// bounded).
fn remove_named(launcher: &Launcher, dir: &str) {
    let spec = helper(
        "d=\"${TMPDIR:-/tmp}/$1\"; [ ! -e \"$d\" ] || { rm -f -- \"$d/shim\" && rmdir -- \"$d\"; }",
        &[dir.into()],
    );
    if let Err(e) = run(launcher, &spec, &[], Instant::now() + Duration::from_secs(10), FAR) {
        tracing::warn!("could not remove a cut-short copy of the shim, {dir}, through {}: {e}", launcher.name());
    }
}

/// Whether `uname -sm`'s answer is this build's OS and architecture.
fn same_platform(uname: &str) -> bool {
    let mut words = uname.split_whitespace();
    let (Some(os), Some(arch)) = (words.next(), words.next()) else { return false };
    let os_ok = match std::env::consts::OS {
        "linux" => os == "Linux",
        "macos" => os == "Darwin",
        "freebsd" => os == "FreeBSD",
        "netbsd" => os == "NetBSD",
        "openbsd" => os == "OpenBSD",
        _ => false,
    };
    let arch_ok = match std::env::consts::ARCH {
        "x86_64" => matches!(arch, "x86_64" | "amd64"),
        "aarch64" => matches!(arch, "aarch64" | "arm64"),
        "x86" => matches!(arch, "i386" | "i486" | "i586" | "i686"),
        "arm" => arch.starts_with("arm"),
        "riscv64" => arch == "riscv64",
        other => arch == other,
    };
    os_ok && arch_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_match_unames_words() {
        let ours = match (std::env::consts::OS, std::env::consts::ARCH) {
            ("linux", "x86_64") => "Linux x86_64",
            ("linux", "aarch64") => "Linux aarch64",
            ("macos", "aarch64") => "Darwin arm64",
            ("freebsd", "x86_64") => "FreeBSD amd64",
            _ => return,
        };
        assert!(same_platform(ours));
        assert!(!same_platform("Plan9 mips"));
        assert!(!same_platform(""));
        assert!(!same_platform("Linux"));
        assert!(!same_platform(if ours.starts_with("Linux") { "Darwin arm64" } else { "Linux x86_64" }));
    }
}
