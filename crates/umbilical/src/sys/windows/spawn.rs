//! `CreateProcessW` with exactly the handles the program is given.
//!
//! `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` names the handles the child
//! inherits; nothing else is inherited even though `bInheritHandles` must be
//! TRUE. Listed handles must be inheritable, so they are made inheritable
//! just around `CreateProcessW`, under this library's lock, and made
//! non-inheritable again at once: the window in which a concurrent
//! `CreateProcess` elsewhere (one without a handle list) could pick them up
//! is as short as it can be.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_ACCESS_DENIED, ERROR_BAD_EXE_FORMAT, ERROR_DIRECTORY,
    ERROR_EXE_MACHINE_TYPE_MISMATCH, ERROR_FILE_NOT_FOUND, ERROR_INTERNAL_ERROR, ERROR_PATH_NOT_FOUND, GENERIC_WRITE,
    HANDLE, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, SetHandleInformation,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Console::{GetStdHandle, STD_ERROR_HANDLE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, SetInformationJobObject,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemDirectoryW, GetWindowsDirectoryW};
use windows_sys::Win32::System::Threading::{
    CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, CreateProcessW,
    DeleteProcThreadAttributeList, EXTENDED_STARTUPINFO_PRESENT, GetCurrentProcess, InitializeProcThreadAttributeList,
    LPPROC_THREAD_ATTRIBUTE_LIST, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_INFORMATION, ResumeThread,
    STARTF_USESTDHANDLES, STARTUPINFOEXW, UpdateProcThreadAttribute,
};

use super::Process;
use crate::error::ErrorKind;
use crate::sys::{Request, SpawnError, StderrTarget};

/// Serialises the inheritable window of our own spawns.
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

pub(crate) fn mechanism() -> &'static str {
    "CreateProcessW + PROC_THREAD_ATTRIBUTE_HANDLE_LIST"
}

fn invalid(what: impl Into<String>) -> SpawnError {
    SpawnError::new(ErrorKind::InvalidInput, what, None)
}

fn wide(s: &OsStr, what: &str) -> Result<Vec<u16>, SpawnError> {
    let mut v: Vec<u16> = s.encode_wide().collect();
    if v.contains(&0) {
        return Err(invalid(format!("{what} contains a NUL character")));
    }
    v.push(0);
    Ok(v)
}

/// How many times a start that failed with `ERROR_INTERNAL_ERROR` is tried.
const START_ATTEMPTS: u64 = 3;

/// `CreateProcessW`'s `lpCommandLine` limit in UTF-16 units, NUL included.
const MAX_COMMAND_LINE: usize = 32_768;

/// Starts the program a request describes.
///
/// OS reference: CreateProcessW with `PROC_THREAD_ATTRIBUTE_HANDLE_LIST` (Microsoft Learn).
pub(crate) fn spawn(req: &Request<'_>) -> Result<Process, SpawnError> {
    // Before the lookup, which would report such a name as not found.
    if req.spec.program.as_os_str().encode_wide().any(|c| c == 0) {
        return Err(invalid("the program name contains a NUL character"));
    }
    let env = environment(req)?;
    let path_var = match &env {
        Some(vars) => vars.get(&EnvKey::new(OsStr::new("PATH"))).map(|(_, v)| v.clone()),
        None => std::env::var_os("PATH"),
    };
    let program = resolve(req.spec.program.as_os_str(), path_var.as_deref())?;
    let ext = program.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    if matches!(ext.as_deref(), Some("bat" | "cmd")) {
        // cmd.exe re-parses the command line with its own rules, which no
        // quoting of ours can make safe for arbitrary arguments.
        return Err(invalid(format!(
            "{} is a batch file; umbilical does not pass arguments through cmd.exe's parser (run `cmd /c` explicitly)",
            program.display()
        )));
    }
    let mut cmdline = command_line(req)?;
    let app = wide(program.as_os_str(), "the program path")?;
    let cwd = match req.spec.cwd.as_deref() {
        Some(dir) => Some(wide(dir.as_os_str(), "the working directory")?),
        None => None,
    };
    let env_block = env.as_ref().map(env_block).transpose()?;

    // The program's stderr: our own (duplicated inheritable copy), NUL, or
    // a handle of the channel or stderr pipe.
    let stderr_own;
    let stderr = match req.stderr {
        StderrTarget::To(h) => Some(h.as_raw_handle() as HANDLE),
        StderrTarget::Inherit => {
            stderr_own = duplicate_stderr().map_err(|e| setup("cannot duplicate stderr", e))?;
            stderr_own.as_ref().map(|h| h.as_raw_handle() as HANDLE)
        }
        StderrTarget::Null => {
            stderr_own = Some(open_nul().map_err(|e| setup("cannot open NUL", e))?);
            stderr_own.as_ref().map(|h| h.as_raw_handle() as HANDLE)
        }
    };
    let stdin = req.stdin.as_raw_handle() as HANDLE;
    let stdout = req.stdout.as_raw_handle() as HANDLE;
    let mut inherit: Vec<HANDLE> = vec![stdin];
    for h in [Some(stdout), stderr, req.lifeline.map(|l| l.as_raw_handle() as HANDLE)].into_iter().flatten() {
        if !inherit.contains(&h) {
            inherit.push(h);
        }
    }

    // A process group is a tree to end as one: it runs in a job too.
    let kill_on_close = req.kill_on_close_job || req.kill_on_parent_death;
    let job = if kill_on_close || req.process_group {
        Some(job_object(kill_on_close).map_err(|e| setup("cannot create the job object", e))?)
    } else {
        None
    };
    let mut flags = EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT;
    if req.no_window {
        flags |= CREATE_NO_WINDOW;
    }
    if req.process_group {
        flags |= CREATE_NEW_PROCESS_GROUP;
    }
    if job.is_some() {
        flags |= CREATE_SUSPENDED;
    }

    let attrs = AttributeList::with_handles(&inherit).map_err(|e| setup("cannot build the handle list", e))?;
    let mut launch = Launch {
        app: &app,
        cmdline: &mut cmdline,
        env_block: env_block.as_deref(),
        cwd: cwd.as_deref(),
        flags,
        stdio: [stdin, stdout, stderr.unwrap_or(std::ptr::null_mut())],
    };
    let (pi, cleared) = create(&mut launch, &attrs, &inherit)?;
    // SAFETY: CreateProcessW returned these fresh handles to us.
    let (process, thread) =
        unsafe { (OwnedHandle::from_raw_handle(pi.hProcess as _), OwnedHandle::from_raw_handle(pi.hThread as _)) };
    if let Some(job) = &job {
        // SAFETY: valid job and process handles; the thread handle is ours.
        unsafe {
            if AssignProcessToJobObject(job.as_raw_handle() as HANDLE, process.as_raw_handle() as HANDLE) == 0 {
                let e = io::Error::last_os_error();
                windows_sys::Win32::System::Threading::TerminateProcess(process.as_raw_handle() as HANDLE, 1);
                return Err(setup("cannot assign the program to its job", e));
            }
            // The program was created suspended so that it starts inside
            // its job; one that cannot be resumed would hang for ever.
            if ResumeThread(thread.as_raw_handle() as HANDLE) == u32::MAX {
                let e = io::Error::last_os_error();
                windows_sys::Win32::System::Threading::TerminateProcess(process.as_raw_handle() as HANDLE, 1);
                return Err(setup("cannot resume the program in its job", e));
            }
        }
    }
    if let Err(e) = cleared {
        // A handle of ours left inheritable would leak into every later
        // std spawn: do not go on as if nothing happened.
        // SAFETY: a valid process handle of ours.
        unsafe { windows_sys::Win32::System::Threading::TerminateProcess(process.as_raw_handle() as HANDLE, 1) };
        return Err(setup("cannot make the program's handles non-inheritable again", e));
    }
    Ok(Process::new(process, pi.dwProcessId, job, req.process_group))
}

/// Sets or clears `HANDLE_FLAG_INHERIT` on each handle
/// (SetHandleInformation, Microsoft Learn); stops at the first failure.
fn set_inheritable(handles: &[HANDLE], on: bool) -> io::Result<()> {
    let flags = if on { HANDLE_FLAG_INHERIT } else { 0 };
    for &h in handles {
        // SAFETY: each handle is open for the duration of the spawn
        // (borrowed from the request or owned by it).
        if unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, flags) } == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The command line CreateProcessW gets: the program and each argument
/// quoted as the C runtime parses them back, NUL-terminated, within
/// Windows' limit.
fn command_line(req: &Request<'_>) -> Result<Vec<u16>, SpawnError> {
    let mut cmdline = Vec::new();
    append_quoted(&mut cmdline, req.spec.program.as_os_str().encode_wide().collect(), true)?;
    for arg in &req.spec.args {
        cmdline.push(u16::from(b' '));
        append_quoted(&mut cmdline, arg.encode_wide().collect(), false)?;
    }
    cmdline.push(0);
    // CreateProcessW's documented limit, NUL included; past it the OS
    // answers with an unrelated-looking error (ERROR_FILENAME_EXCED_RANGE).
    if cmdline.len() > MAX_COMMAND_LINE {
        return Err(invalid(format!(
            "the command line is {} characters long; Windows takes at most {}",
            cmdline.len() - 1,
            MAX_COMMAND_LINE - 1
        )));
    }
    Ok(cmdline)
}

/// The encoded arguments of one CreateProcessW call.
struct Launch<'a> {
    app: &'a [u16],
    cmdline: &'a mut [u16],
    env_block: Option<&'a [u16]>,
    cwd: Option<&'a [u16]>,
    flags: u32,
    /// stdin, stdout, stderr (null: none).
    stdio: [HANDLE; 3],
}

/// CreateProcessW itself, under the spawn lock with the listed handles
/// inheritable for its duration; returns what it filled in, and whether
/// the handles were made non-inheritable again.
fn create(
    launch: &mut Launch<'_>,
    attrs: &AttributeList,
    inherit: &[HANDLE],
) -> Result<(PROCESS_INFORMATION, io::Result<()>), SpawnError> {
    // SAFETY: STARTUPINFOEXW and PROCESS_INFORMATION are plain C structs
    // for which all-zero is a valid (empty) value.
    let (mut si, mut pi): (STARTUPINFOEXW, PROCESS_INFORMATION) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    si.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    [si.StartupInfo.hStdInput, si.StartupInfo.hStdOutput, si.StartupInfo.hStdError] = launch.stdio;
    si.lpAttributeList = attrs.ptr();
    // The listed handles must be inheritable for CreateProcessW, and are so
    // only under the lock, so that a concurrent std spawn (which inherits
    // every inheritable handle) never sees them so.
    let guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = set_inheritable(&inherit, true) {
        // Those already made inheritable go back; a failure to clear is
        // reported below as one of them would be.
        let _ = set_inheritable(&inherit, false);
        return Err(setup("cannot make the program's handles inheritable", e));
    }
    // ERROR_INTERNAL_ERROR is how Wine reports a new process that died in
    // its own start-up, before any code of the program ran (seen now and
    // then in the full Windows suite under Wine 8, never alone). Nothing of
    // the program ran, so starting it again is safe; a bounded retry. Any
    // other failure is reported at once.
    let mut attempt = 0;
    let (ok, err) = loop {
        // SAFETY: all pointers (application name, command line,
        // environment block, directory, startup info with its attribute
        // list) point to live, correctly terminated buffers for the
        // duration of the call; the listed handles are open (borrowed from
        // the request or owned here). CreateProcessW, Microsoft Learn.
        let ok = unsafe {
            CreateProcessW(
                launch.app.as_ptr(),
                launch.cmdline.as_mut_ptr(),
                std::ptr::null::<SECURITY_ATTRIBUTES>(),
                std::ptr::null::<SECURITY_ATTRIBUTES>(),
                1,
                launch.flags,
                launch.env_block.map_or(std::ptr::null(), |b| b.as_ptr().cast()),
                launch.cwd.map_or(std::ptr::null(), |c| c.as_ptr()),
                &si.StartupInfo,
                &mut pi,
            )
        };
        let err = io::Error::last_os_error();
        attempt += 1;
        if ok != 0 || err.raw_os_error() != Some(ERROR_INTERNAL_ERROR as i32) || attempt == START_ATTEMPTS {
            break (ok, err);
        }
        std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
    };
    let cleared = set_inheritable(&inherit, false);
    drop(guard);
    if ok == 0 {
        return Err(classify(err));
    }
    Ok((pi, cleared))
}

fn setup(what: &str, e: io::Error) -> SpawnError {
    SpawnError::new(ErrorKind::Spawn, format!("{what}: {e}"), Some(e))
}

fn classify(e: io::Error) -> SpawnError {
    let code = e.raw_os_error().unwrap_or(0) as u32;
    let kind = match code {
        ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => ErrorKind::NotFound,
        ERROR_ACCESS_DENIED | ERROR_BAD_EXE_FORMAT | ERROR_EXE_MACHINE_TYPE_MISMATCH => ErrorKind::NotExecutable,
        ERROR_DIRECTORY => ErrorKind::InvalidInput,
        _ => ErrorKind::Spawn,
    };
    SpawnError::new(kind, format!("{kind}: {e}"), Some(e))
}

/// An owned `PROC_THREAD_ATTRIBUTE_LIST` holding one handle list.
struct AttributeList {
    buf: Vec<u64>,
    _handles: Box<[HANDLE]>,
    /// Initialised, so to be deleted.
    inited: bool,
}

impl AttributeList {
    fn with_handles(handles: &[HANDLE]) -> io::Result<Self> {
        let handles: Box<[HANDLE]> = handles.into();
        let mut size = 0usize;
        // SAFETY: a null list asks only for the size
        // (InitializeProcThreadAttributeList, Microsoft Learn).
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), 1, 0, &mut size) };
        let buf = vec![0u64; size.div_ceil(8)];
        let mut this = AttributeList { buf, _handles: handles, inited: false };
        // SAFETY: the buffer is `size` bytes, 8-byte aligned.
        if unsafe { InitializeProcThreadAttributeList(this.ptr(), 1, 0, &mut size) } == 0 {
            return Err(io::Error::last_os_error());
        }
        this.inited = true;
        // SAFETY: an initialised list; the handle array lives in `this` as
        // long as the list that points to it (UpdateProcThreadAttribute).
        let ok = unsafe {
            UpdateProcThreadAttribute(
                this.ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                this._handles.as_ptr().cast(),
                this._handles.len() * size_of::<HANDLE>(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(this)
    }

    fn ptr(&self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_ptr() as LPPROC_THREAD_ATTRIBUTE_LIST
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        if self.inited {
            // SAFETY: initialised in `with_handles`, deleted once.
            unsafe { DeleteProcThreadAttributeList(self.ptr()) };
        }
    }
}

/// An inheritable-capable duplicate of our stderr, or `None` if we have
/// none (a GUI process, or a closed handle).
fn duplicate_stderr() -> io::Result<Option<OwnedHandle>> {
    // SAFETY: GetStdHandle has no preconditions; DuplicateHandle writes the
    // new handle into a local that is owned at once.
    unsafe {
        let h = GetStdHandle(STD_ERROR_HANDLE);
        if h.is_null() || h == INVALID_HANDLE_VALUE {
            return Ok(None);
        }
        let me = GetCurrentProcess();
        let mut dup: HANDLE = std::ptr::null_mut();
        if DuplicateHandle(me, h, me, &mut dup, 0, 0, DUPLICATE_SAME_ACCESS) == 0 {
            // Our stderr exists but cannot be handed on: say so rather than
            // start the program with its stderr silently gone.
            return Err(io::Error::last_os_error());
        }
        Ok(Some(OwnedHandle::from_raw_handle(dup as _)))
    }
}

fn open_nul() -> io::Result<OwnedHandle> {
    let name: Vec<u16> = "NUL".encode_utf16().chain(Some(0)).collect();
    // SAFETY: NUL-terminated name; the handle is owned at once.
    unsafe {
        let h = CreateFileW(
            name.as_ptr(),
            GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            0,
            std::ptr::null_mut(),
        );
        if h == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedHandle::from_raw_handle(h as _))
    }
}

/// A job for the program; with `kill_on_close`, closing its last handle
/// (our `Process` dropped, or our process gone) kills what is inside.
fn job_object(kill_on_close: bool) -> io::Result<OwnedHandle> {
    // SAFETY: plain job creation and configuration with a local struct.
    unsafe {
        let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
        if job.is_null() {
            return Err(io::Error::last_os_error());
        }
        let job = OwnedHandle::from_raw_handle(job as _);
        if !kill_on_close {
            return Ok(job);
        }
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        if SetInformationJobObject(
            job.as_raw_handle() as HANDLE,
            JobObjectExtendedLimitInformation,
            (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        ) == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(job)
    }
}

/// Appends `arg` quoted by the MSVC C runtime's rules, which is how
/// `CommandLineToArgvW` and every CRT-based program split the line.
///
/// The program name (argv[0]) follows simpler rules: no escapes, so it
/// may not contain `"`.
fn append_quoted(out: &mut Vec<u16>, arg: Vec<u16>, program: bool) -> Result<(), SpawnError> {
    const QUOTE: u16 = b'"' as u16;
    const BACKSLASH: u16 = b'\\' as u16;
    if arg.contains(&0) {
        return Err(invalid("an argument contains a NUL character"));
    }
    if program {
        if arg.contains(&QUOTE) {
            return Err(invalid("the program name contains a quote"));
        }
        out.push(QUOTE);
        out.extend_from_slice(&arg);
        out.push(QUOTE);
        return Ok(());
    }
    let needs = arg.is_empty()
        || arg.iter().any(|&c| c == b' ' as u16 || c == b'\t' as u16 || c == b'\n' as u16 || c == 0x0b || c == QUOTE);
    if !needs {
        out.extend_from_slice(&arg);
        return Ok(());
    }
    out.push(QUOTE);
    let mut backslashes = 0usize;
    for &c in &arg {
        if c == BACKSLASH {
            backslashes += 1;
            continue;
        }
        if c == QUOTE {
            // Backslashes before a quote are doubled, and the quote escaped.
            out.extend(std::iter::repeat_n(BACKSLASH, backslashes * 2 + 1));
        } else {
            out.extend(std::iter::repeat_n(BACKSLASH, backslashes));
        }
        backslashes = 0;
        out.push(c);
    }
    // Trailing backslashes are doubled so the closing quote stays a quote.
    out.extend(std::iter::repeat_n(BACKSLASH, backslashes * 2));
    out.push(QUOTE);
    Ok(())
}

/// Environment keys compare without case on Windows.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EnvKey(Vec<u16>);

impl EnvKey {
    fn new(key: &OsStr) -> Self {
        // Upper-casing by code unit matches the ordering Windows expects of
        // an environment block closely enough for sorting and lookups.
        EnvKey(key.encode_wide().map(|c| if (b'a' as u16..=b'z' as u16).contains(&c) { c - 32 } else { c }).collect())
    }
}

/// The program's environment, or `None` to inherit ours untouched.
fn environment(req: &Request<'_>) -> Result<Option<BTreeMap<EnvKey, (OsString, OsString)>>, SpawnError> {
    if !req.spec.env_clear && req.spec.env.is_empty() {
        return Ok(None);
    }
    let mut vars = BTreeMap::new();
    if !req.spec.env_clear {
        for (k, v) in std::env::vars_os() {
            vars.insert(EnvKey::new(&k), (k, v));
        }
    }
    for (k, v) in &req.spec.env {
        // A leading '=' is legal (cmd's per-drive directories), any other is not.
        if k.is_empty() || k.encode_wide().skip(1).any(|c| c == b'=' as u16) {
            return Err(invalid(format!("environment variable name {k:?} is empty or contains '='")));
        }
        match v {
            Some(v) => vars.insert(EnvKey::new(k), (k.clone(), v.clone())),
            None => vars.remove(&EnvKey::new(k)),
        };
    }
    Ok(Some(vars))
}

/// `K=V\0...\0\0`, sorted without case, as CreateProcessW wants.
fn env_block(vars: &BTreeMap<EnvKey, (OsString, OsString)>) -> Result<Vec<u16>, SpawnError> {
    let mut block = Vec::new();
    for (k, v) in vars.values() {
        let (k, v): (Vec<u16>, Vec<u16>) = (k.encode_wide().collect(), v.encode_wide().collect());
        if k.contains(&0) || v.contains(&0) {
            return Err(invalid(format!(
                "environment variable {:?} contains a NUL character",
                OsString::from_wide(&k)
            )));
        }
        block.extend_from_slice(&k);
        block.push(b'=' as u16);
        block.extend_from_slice(&v);
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(block)
}

fn system_dir(f: unsafe extern "system" fn(*mut u16, u32) -> u32) -> Option<PathBuf> {
    let mut buf = [0u16; 512];
    // SAFETY: the buffer's length is passed; the result is a length.
    let n = unsafe { f(buf.as_mut_ptr(), buf.len() as u32) } as usize;
    (n > 0 && n < buf.len()).then(|| PathBuf::from(OsString::from_wide(&buf[..n])))
}

/// Resolves the program: a name with a path separator is used as it is,
/// relative to the parent's directory (as `CreateProcessW` takes it, not to
/// `current_dir`); a bare name is searched in the program's `PATH`, then the
/// system directory and the Windows directory. A name without an extension
/// is tried with `.exe` first.
fn resolve(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, SpawnError> {
    let p = Path::new(program);
    let names: Vec<PathBuf> = if p.extension().is_some() {
        vec![p.to_path_buf()]
    } else {
        let mut exe = program.to_owned();
        exe.push(".exe");
        vec![PathBuf::from(exe), p.to_path_buf()]
    };
    let check = |candidate: PathBuf, denied: &mut Option<PathBuf>| -> Option<PathBuf> {
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() => Some(candidate),
            Ok(_) => {
                denied.get_or_insert(candidate);
                None
            }
            Err(_) => None,
        }
    };
    let mut denied = None;
    let has_separator = program.encode_wide().any(|c| c == b'\\' as u16 || c == b'/' as u16);
    if has_separator || p.is_absolute() {
        for name in names {
            if let Some(found) = check(name, &mut denied) {
                return Ok(found);
            }
        }
    } else {
        let mut dirs: Vec<PathBuf> = path_var.map(|v| std::env::split_paths(v).collect()).unwrap_or_default();
        dirs.extend(system_dir(GetSystemDirectoryW));
        dirs.extend(system_dir(GetWindowsDirectoryW));
        for dir in dirs {
            for name in &names {
                if let Some(found) = check(dir.join(name), &mut denied) {
                    return Ok(found);
                }
            }
        }
    }
    Err(match denied {
        Some(d) => {
            SpawnError::new(ErrorKind::NotExecutable, format!("{} is not an executable file", d.display()), None)
        }
        None => SpawnError::new(
            ErrorKind::NotFound,
            if has_separator { "no such file" } else { "not found on PATH or in the system directories" },
            None,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(arg: &str) -> String {
        let mut out = Vec::new();
        append_quoted(&mut out, arg.encode_utf16().collect(), false).unwrap();
        String::from_utf16(&out).unwrap()
    }

    #[test]
    fn msvc_quoting() {
        assert_eq!(quoted("plain"), "plain");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a b"), "\"a b\"");
        assert_eq!(quoted(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quoted(r"C:\dir\"), r"C:\dir\");
        assert_eq!(quoted(r"C:\my dir\"), r#""C:\my dir\\""#);
        assert_eq!(quoted(r#"a\"b"#), r#""a\\\"b""#);
    }
}
