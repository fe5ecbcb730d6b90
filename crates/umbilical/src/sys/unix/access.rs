//! Whether another user could execute a file: checked before a launcher
//! starts the shim as that user, so that a shim it cannot run is not chosen
//! by default (`ShimMode::Auto`).
//!
//! Mode bits only: ACLs, `noexec` mounts and security modules can still
//! refuse what the bits allow (then the launcher fails and says so), and can
//! allow what they refuse (then the shim is not used where it could have
//! been: the safe side).

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `Ok` if `user` (root when `None`, as sudo, doas, pkexec and su default
/// to) can search every directory above `path` and execute `path`; else
/// why not, in words.
pub(crate) fn can_execute_as(path: &Path, user: Option<&str>) -> Result<(), String> {
    let who = user.unwrap_or("root");
    // The launchers' default user is uid 0, whom the mode bits need no
    // name for: no password-database lookup (through NSS modules that a
    // short-lived caller would load for this alone) on the common path.
    let account = match user {
        None => Some(Account { uid: 0, groups: Vec::new() }),
        Some(name) => account(name),
    };
    let Some(account) = account else {
        // The launcher will refuse an unknown user itself, through the shim
        // told apart from the program's failure.
        return Ok(());
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("the shim {} cannot be read: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("the shim {} is not a file", path.display()));
    }
    if !allowed(&account, &meta, 0o1) {
        return Err(format!("user {who} cannot execute the shim {}", path.display()));
    }
    for dir in path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
        let Ok(meta) = std::fs::metadata(dir) else { continue };
        if !allowed(&account, &meta, 0o1) {
            return Err(format!(
                "user {who} cannot reach the shim {}: {} is not searchable",
                path.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

struct Account {
    uid: u32,
    groups: Vec<u32>,
}

/// Whether the account has permission `bit` (1 = execute/search) on the
/// file, by the owner, group and other classes in that order, as the kernel
/// decides; root needs one execute bit on a file and nothing on a directory.
fn allowed(account: &Account, meta: &std::fs::Metadata, bit: u32) -> bool {
    let mode = meta.mode();
    if account.uid == 0 {
        return meta.is_dir() || mode & 0o111 != 0;
    }
    if meta.uid() == account.uid {
        mode & (bit << 6) != 0
    } else if account.groups.contains(&meta.gid()) {
        mode & (bit << 3) != 0
    } else {
        mode & bit != 0
    }
}

fn account(user: &str) -> Option<Account> {
    let name = CString::new(user).ok()?;
    // SAFETY: `passwd` is a plain C struct of integers and pointers, for
    // which all-zero is a valid (empty) value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes into `pwd` and `buf`, both valid for the
    // sizes given, and sets `result` to `&pwd` or null.
    let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    let mut groups = vec![pwd.pw_gid];
    groups.extend(supplementary_groups(&name, pwd.pw_gid));
    Some(Account { uid: pwd.pw_uid, groups })
}

#[cfg(target_os = "linux")]
fn supplementary_groups(name: &CString, gid: libc::gid_t) -> Vec<u32> {
    let mut list = vec![0 as libc::gid_t; 256];
    let mut n = list.len() as libc::c_int;
    // SAFETY: `list` holds `n` entries; getgrouplist writes at most that
    // many and stores the real count in `n`.
    let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, list.as_mut_ptr(), &mut n) };
    if rc < 0 {
        return Vec::new();
    }
    list.truncate(n.max(0) as usize);
    list
}

/// Elsewhere only the primary group counts: a missed supplementary group
/// can only make the shim look unreachable, and then it is not used.
#[cfg(not(target_os = "linux"))]
fn supplementary_groups(_name: &CString, _gid: libc::gid_t) -> Vec<u32> {
    Vec::new()
}
