//! Where the in-band shim is for the launcher's sessions, and, when we
//! copy it into a container, that nobody else can replace it and that it
//! goes away on every path.
//!
//! The copy runs as the container's default user (root, as a rule), so a
//! user of the container who can replace it before it runs owns the
//! container. It goes to `/tmp/umbilical-<random>` only where `/` and
//! `/tmp` are root's and no one else can rename what is in them: not
//! writable by group or others, or sticky. Both are read, before anything
//! is copied, from the first entry of the engine's own archive of the
//! directory (`docker cp C:/tmp -`), which needs nothing in the image. An
//! image whose `/tmp` is world-writable without the sticky bit is refused
//! with what to do instead (a shim in the image, named by `shim_path`).
//!
//! A copy nobody runs is removed: a stopped container is refused before
//! the copy (nothing in it could remove it), and the copy is made by a
//! janitor, a `sh` of the caller's in a process group of its own, which
//! removes the copy through the launcher unless the caller tells it that
//! the bridge (which removes its own copy when it ends) runs. A caller
//! killed during the copy, or failing after it, closes the janitor's
//! stdin without that word, and the copy goes.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::staged::Staged;
use crate::error::{Error, ErrorKind};
use crate::exit::ExitStatus;
use crate::launcher::{ShimRoute, shell_command};
use crate::options::Options;
use crate::shim::elf::Linkage;
use crate::shim::os::remote::{helper, read_within, reap_within, run_helper, said_on, spawn_on_stream};
use crate::shim::source::Source;
use crate::spec::ProgramSpec;
use crate::sys;

/// What the janitor prints once the copy is in place.
const COPIED: &[u8] = b"copied\n";
/// What tells the janitor that the bridge owns the copy now.
const KEEP: &[u8] = b"keep\n";
/// The most of an archive read for its first entry: a PAX header or two
/// and the entry's own.
const ARCHIVE_PREFIX: usize = 64 << 10;

/// Where the shim is for the launcher's sessions.
pub(super) struct Placed {
    /// Its path where the launcher runs it.
    pub(super) shim: PathBuf,
    /// When we copied it there: what removes it until the bridge runs.
    janitor: Option<Janitor>,
    /// Where the bridge listens.
    pub(super) socket: String,
    /// We copied it there, and the bridge removes it.
    copied: bool,
    /// Through ssh without `shim_path`: the bridge's session looks for it
    /// first, and a far host without it gets a copy.
    pub(super) look: bool,
    /// Where it came from, as `Child::shim_origin` says it.
    pub(super) origin: String,
}

impl Placed {
    /// Whether we copied the shim there (and the bridge must remove it).
    pub(super) fn copied(&self) -> bool {
        self.copied
    }

    /// The same place, the shim now a copy of `source` sent to the far
    /// host, which the bridge removes.
    pub(super) fn far_copy(self, copy: std::ffi::OsString, source: &Source) -> Placed {
        let origin = format!("{source} copied to the far host at {}", copy.to_string_lossy());
        Placed { shim: copy.into(), copied: true, look: false, origin, ..self }
    }

    /// The bridge runs and removes the copy when it ends: the janitor
    /// exits without removing it.
    pub(super) fn hand_over(&mut self) {
        if let Some(mut janitor) = self.janitor.take() {
            let _ = janitor.stream.write_all(KEEP);
        }
    }
}

/// The `sh` that copied the shim in and removes it unless told not to.
struct Janitor {
    stream: UnixStream,
    process: Option<sys::Process>,
}

impl Drop for Janitor {
    fn drop(&mut self) {
        // Its stdin ends with the stream, closed after this: it removes
        // the copy unless it read KEEP.
        if let Some(process) = self.process.take() {
            sys::adopt(process);
        }
    }
}

/// Puts the shim where the launcher's sessions can run it: through
/// container exec a copy of [`Options::shim_source`] unless `shim_path`
/// names one inside; through ssh `shim_path` (or this executable's path)
/// on the far host, as with a forwarded link.
pub(super) fn place(opts: &Options, name: &str, deadline: Instant) -> Result<Placed, Error> {
    if opts.launcher.capabilities().shim_route != ShimRoute::InBandCopied || opts.shim_path.is_some() {
        let socket = format!("/tmp/umbilical-{name}.sock");
        let forwarded = opts.launcher.capabilities().shim_route == ShimRoute::Forwarded;
        let look = forwarded && opts.shim_path.is_none();
        let shim = opts.shim_program()?;
        let origin = format!("{} {}", shim.display(), if forwarded { "on the far host" } else { "in the container" });
        return Ok(Placed { shim, janitor: None, socket, copied: false, look, origin });
    }
    let source = Source::of(opts)?;
    match source.linkage() {
        Linkage::Static => {}
        Linkage::Dynamic => {
            tracing::warn!("the shim {source} is dynamically linked: it runs only in an image that has its C library")
        }
        Linkage::NotElf => {
            return Err(Error::new(
                ErrorKind::ShimFailed,
                format!("the shim {source} is not a Linux (ELF) executable, which a container needs"),
                None,
            ));
        }
    }
    let dir = choose_dir(opts, deadline)?;
    let staged = Staged::of(&source)?;
    let inside = format!("{}/umbilical-{name}", dir.trim_end_matches('/'));
    let copied = copy_with_janitor(opts, Some((staged.path(), &inside)), &[&inside], false, deadline);
    // Copied or not, the staged file, if we wrote one, is not needed now.
    drop(staged);
    // The bridge listens next to the copy (where we know it may write),
    // beside the private directory that holds a copy made from inside.
    let (janitor, inside, socket) = match copied {
        Ok(janitor) => (janitor, inside.clone(), format!("{inside}.sock")),
        // The engine could not write there: a read-only root filesystem,
        // as a rule. A tmpfs it cannot reach may still be writable from
        // inside, by an exec'd `sh`.
        Err(refused) if refused.kind() == ErrorKind::LauncherRefused => copy_from_inside(opts, &source, name, deadline)
            .map_err(|inside| {
                Error::new(
                    ErrorKind::LauncherRefused,
                    format!(
                        "{refused}, nor could `sh` in it ({inside}): an image with no place that is writable and \
                         allows execution needs a shim inside, named with shim_path (CLI --shim-path)"
                    ),
                    None,
                )
            })?,
        Err(e) => return Err(e),
    };
    tracing::info!(from = %source, to = %inside, "the shim is copied into the container");
    let origin = format!("{source} copied into the container at {inside}");
    Ok(Placed { shim: inside.into(), janitor: Some(janitor), socket, copied: true, look: false, origin })
}

/// What `sh` runs in the container to copy the shim in from inside (`$1`
/// its length, `$2` our random name, the rest the places to try): the
/// first directory that is writable here, keeps what its user puts in it
/// (sticky, or closed to group and others; root's or this user's) and
/// allows execution gets `umbilical-NAME/shim`. The directory is made by
/// `mkdir -m 700`, which fails on anything already at that name (a
/// symlink or a directory planted by a user who read the name in `ps`):
/// nothing there is ever written through, and in it nobody else can swap
/// the file between our checks. Then an empty `shim` made executable is
/// run (`sh` takes it for an empty script): docker mounts `/dev/shm`, and
/// `--tmpfs` by default, `noexec`, which refuses it. Then it is filled,
/// checked for length, and it and its directory made `0755` (an exec user
/// other than the default one runs it).
const COPY_FROM_INSIDE: &str = r#"len=$1 name=$2; shift 2
umask 077
for d do
  [ -d "$d" ] && [ -w "$d" ] || continue
  m=$(ls -ldn "$d") || continue
  case $m in d????????[tT]*) ;; d????-??-*) ;; *) continue;; esac
  uid=$(echo "$m" | { read -r _ _ u _; echo "$u"; })
  [ "$uid" = 0 ] || [ "$uid" = "$(id -u)" ] || continue
  p=$d/umbilical-$name
  mkdir -m 700 "$p" 2>/dev/null || continue
  f=$p/shim
  if : >"$f" && chmod 700 "$f" && "$f" </dev/null >/dev/null 2>&1; then
    if cat >"$f" && [ "$(wc -c < "$f")" -eq "$len" ] && chmod 755 "$f" "$p"; then
      echo "copied $f"; exit 0
    fi
    rm -rf "$p"; exit 1
  fi
  rm -rf "$p"
done
echo "no directory among $* is writable, keeps what its user puts there, and allows execution" >&2
exit 3"#;

/// Copies the shim in from inside, for an engine that could not write it
/// (see [`EXEC_PLACES`]): a janitor first, so that a copy cut short by the
/// caller's death goes too, then `sh` as the container's default user
/// ([`COPY_FROM_INSIDE`]). Needs `sh`, `cat`, `ls`, `wc`, `mkdir`, `chmod` and `rm` in the
/// image; `Err` says why not.
fn copy_from_inside(
    opts: &Options,
    source: &Source,
    name: &str,
    deadline: Instant,
) -> Result<(Janitor, String, String), String> {
    let bytes = source.bytes().map_err(|e| e.to_string())?;
    let dirs: Vec<String> = EXEC_PLACES.iter().map(|place| format!("{place}/umbilical-{name}")).collect();
    let remove: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let janitor = copy_with_janitor(opts, None, &remove, true, deadline).map_err(|e| e.to_string())?;
    let answer = run_helper(
        &opts.launcher.as_default_user(),
        &inside_copy(bytes.len(), name),
        &bytes,
        deadline,
        "in the container",
    )
    .map_err(|e| e.to_string())?;
    let copied = answer.trim().strip_prefix("copied ");
    match dirs.iter().find(|dir| copied == Some(&format!("{dir}/shim"))) {
        Some(dir) => Ok((janitor, format!("{dir}/shim"), format!("{dir}.sock"))),
        None => Err(format!("it answered {:?}", answer.trim())),
    }
}

/// `sh -c COPY_FROM_INSIDE sh LEN NAME PLACES...`, run through the
/// launcher as the container's default user.
fn inside_copy(len: usize, name: &str) -> ProgramSpec {
    let mut args: Vec<OsString> = vec![len.to_string().into(), name.into()];
    args.extend(EXEC_PLACES.iter().map(OsString::from));
    helper(COPY_FROM_INSIDE, &args)
}

/// Where the engine's `cp` may put a copy, in order: the usual temporary
/// directories, then `/` itself (root's and closed to others wherever the
/// rest is safe: an image with no `/tmp` still takes the copy).
const CP_PLACES: [&str; 3] = ["/tmp", "/var/tmp", "/run"];

/// Where an exec'd `sh` may write the copy when the engine's `cp` cannot:
/// the tmpfs mounts a read-only root filesystem keeps writable, which the
/// engine's `cp` does not reach (it writes to the image's layer under
/// them).
const EXEC_PLACES: [&str; 3] = ["/dev/shm", "/tmp", "/run"];

/// The directory for the engine's copy: refuses a container that does not
/// run, or whose `/` another user could rename our copy out of; takes the
/// first of [`CP_PLACES`] that exists and is safe, else `/`. One look at a
/// time: docker holds the container while it streams an archive we do not
/// read on, and an inspect started beside it waits for it (seen here: a
/// deadlock until the connect timeout).
fn choose_dir(opts: &Options, deadline: Instant) -> Result<&'static str, Error> {
    let launcher = opts.launcher.name();
    if let Some(argv) = opts.launcher.running_probe() {
        let (out, status, said) = Capture::start(&argv)?.finish(deadline, |_| false)?;
        if status != Some(ExitStatus::Exited(0)) || out.trim_ascii() != b"true" {
            let said = if said.trim().is_empty() { String::from_utf8_lossy(&out).trim().to_string() } else { said };
            return Err(Error::new(
                ErrorKind::LauncherRefused,
                format!(
                    "{launcher}: the container does not run ({}), so nothing could remove a shim copied into it; \
                     nothing was copied",
                    said.trim()
                ),
                None,
            ));
        }
    }
    // `/` first: where others may rename in it, nothing under it is safe.
    match look(opts, "/", deadline)? {
        Ok((entry, owners_kept)) => judge(&entry, owners_kept).map_err(|why| unsafe_place(&launcher, "/", &why))?,
        Err(said) => {
            return Err(Error::new(
                ErrorKind::LauncherRefused,
                format!("{launcher}: cannot read the container's / ({said}): no such container"),
                None,
            ));
        }
    }
    for dir in CP_PLACES {
        match look(opts, dir, deadline)? {
            Err(said) => tracing::debug!(dir, said, "the container has no such directory"),
            Ok((entry, owners_kept)) => match judge(&entry, owners_kept) {
                Ok(()) => return Ok(dir),
                Err(why) => tracing::info!(dir, why, "not a safe place for the shim's copy"),
            },
        }
    }
    Ok("/")
}

/// The first entry of the engine's archive of the container's `dir` and
/// whether it kept owners; `Err` with the engine's status and words when
/// it found no such directory (or no such container: `/` tells).
fn look(opts: &Options, dir: &str, deadline: Instant) -> Result<Result<(Entry, bool), String>, Error> {
    let launcher = opts.launcher.name();
    let (argv, owners_kept) = opts.launcher.archive_of(dir)?;
    let capture = Capture::start(&argv)?;
    let (out, status, said) = capture.finish(deadline, |bytes| first_entry(bytes).is_some())?;
    match first_entry(&out) {
        Some(Ok(entry)) => Ok(Ok((entry, owners_kept))),
        Some(Err(why)) => Err(unsafe_place(&launcher, dir, &format!("its archive could not be read: {why}"))),
        None => {
            Ok(Err(format!("{}: {}", status.map_or_else(|| "no status".into(), |s| format!("{s:?}")), said.trim())))
        }
    }
}

fn unsafe_place(launcher: &str, dir: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::ShimFailed,
        format!(
            "{launcher}: the container's {dir} {why}: a shim copied there could be replaced by another user of the \
             container before it runs as its default user; nothing was copied. Put a shim in the image and name it \
             with shim_path (CLI --shim-path), or make {dir} root's and sticky (chmod 1777)"
        ),
        None,
    )
}

/// Whether a directory keeps what root puts in it: root's (where the
/// archive kept its owner), and not writable by group or others unless
/// sticky; `Err` says why not.
fn judge(entry: &Entry, owner_known: bool) -> Result<(), String> {
    if entry.kind != b'5' {
        return Err(format!("is not a plain directory (tar type {:?})", entry.kind as char));
    }
    if owner_known && entry.uid != 0 {
        return Err(format!("belongs to uid {}, not root", entry.uid));
    }
    if entry.mode & 0o022 != 0 && entry.mode & 0o1000 == 0 {
        return Err(format!("is writable by other users without the sticky bit (mode {:04o})", entry.mode & 0o7777));
    }
    Ok(())
}

/// What an archive's first entry says of itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its permission bits, with set-id and sticky.
    pub(crate) mode: u32,
    /// Its owner.
    pub(crate) uid: u64,
    /// Its tar type flag (`b'5'`: a directory).
    pub(crate) kind: u8,
}

/// The first entry of the tar archive `bytes` starts with (PAX and GNU
/// long-name headers before it read or skipped): `None` while more bytes
/// are needed, `Err` for what is not a tar archive.
pub(crate) fn first_entry(bytes: &[u8]) -> Option<Result<Entry, &'static str>> {
    let mut at = 0;
    let mut pax_uid = None;
    loop {
        let header = bytes.get(at..at + 512)?;
        if header.iter().all(|&b| b == 0) {
            return Some(Err("an empty archive"));
        }
        if !checksum_ok(header) {
            return Some(Err("a header with a bad checksum"));
        }
        let size = match octal(&header[124..136]) {
            Some(size) => size,
            None => return Some(Err("a header with a bad size")),
        };
        let kind = header[156];
        match kind {
            b'x' | b'g' | b'L' | b'K' => {
                let Ok(size) = usize::try_from(size) else { return Some(Err("a header with a huge size")) };
                let data_end = at.checked_add(512)?.checked_add(size)?;
                if data_end > ARCHIVE_PREFIX {
                    return Some(Err("extended headers too long"));
                }
                let data = bytes.get(at + 512..data_end)?;
                if kind == b'x' {
                    pax_uid = pax_record(data, "uid").or(pax_uid);
                }
                at += 512 + size.div_ceil(512) * 512;
            }
            _ => {
                let Some(mode) = octal(&header[100..108]) else { return Some(Err("a header with a bad mode")) };
                let uid = match pax_uid {
                    Some(uid) => uid,
                    None => match numeric(&header[108..116]) {
                        Some(uid) => uid,
                        None => return Some(Err("a header with a bad uid")),
                    },
                };
                return Some(Ok(Entry {
                    mode: (mode & 0o7777) as u32,
                    uid,
                    kind: if kind == 0 { b'0' } else { kind },
                }));
            }
        }
    }
}

/// A tar header's checksum: the sum of its bytes with the checksum field
/// read as spaces.
fn checksum_ok(header: &[u8]) -> bool {
    let Some(stored) = octal(&header[148..156]) else { return false };
    let sum: u64 =
        header.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
    sum == stored
}

/// An octal field, NUL- or space-terminated.
fn octal(field: &[u8]) -> Option<u64> {
    let digits: &[u8] = field.split(|&b| b == 0 || b == b' ').find(|part| !part.is_empty()).unwrap_or(b"0");
    let text = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(text, 8).ok()
}

/// A numeric field: octal, or GNU base-256 (high bit set) for large ids.
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(n);
    }
    octal(field)
}

/// A PAX record's value (`LEN KEY=VALUE\n` records) as a number.
fn pax_record(data: &[u8], key: &str) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    text.lines().find_map(|line| {
        let (_, record) = line.split_once(' ')?;
        let (k, v) = record.split_once('=')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

/// A helper command of the engine's, its stdout read by us.
struct Capture {
    stream: UnixStream,
    stderr: sys::Handle,
    process: sys::Process,
}

impl Capture {
    fn start(argv: &[OsString]) -> Result<Capture, Error> {
        let spec = ProgramSpec { program: argv[0].clone(), args: argv[1..].to_vec(), ..ProgramSpec::default() };
        let (stream, process, stderr) = spawn_on_stream(&spec, false, &spec.program.to_string_lossy())?;
        Ok(Capture { stream: UnixStream::from(stream), stderr, process })
    }

    /// What it printed, until its end, `enough` of it, [`ARCHIVE_PREFIX`]
    /// bytes or `deadline`; its status if it ended, and what it said.
    fn finish(
        mut self,
        deadline: Instant,
        enough: impl Fn(&[u8]) -> bool,
    ) -> Result<(Vec<u8>, Option<ExitStatus>, String), Error> {
        let (out, timed_out) = read_within(&mut self.stream, deadline, ARCHIVE_PREFIX, &enough);
        // The rest of an archive is not wanted: it ends with its stream.
        drop(self.stream);
        let grace = if timed_out { Duration::ZERO } else { Duration::from_secs(2) };
        let status = reap_within(self.process, grace);
        let said = said_on(self.stderr);
        if timed_out && !enough(&out) {
            return Err(Error::new(
                ErrorKind::TimedOut,
                "looking into the container did not finish within the connect timeout".to_string(),
                None,
            ));
        }
        Ok((out, status, said))
    }
}

/// Makes `copy`, `(source, inside)`, through the janitor (with `None`, the
/// copy is made after, and the janitor only removes), and waits (bounded) until
/// the copy is in place; the janitor removes every path of `remove`
/// (directories too where `recursive`).
fn copy_with_janitor(
    opts: &Options,
    copy: Option<(&std::path::Path, &str)>,
    remove: &[&str],
    recursive: bool,
    deadline: Instant,
) -> Result<Janitor, Error> {
    let launcher = opts.launcher.name();
    let copy = match copy {
        Some((source, inside)) => opts.launcher.copy_into(source, inside)?,
        None => vec![":".into()],
    };
    let remove: Vec<&std::ffi::OsStr> = remove.iter().map(std::ffi::OsStr::new).collect();
    let remove = crate::shim::os::remote::remove_spec(&opts.launcher, &remove, recursive)?;
    let quoted = |program: &std::ffi::OsStr, args: &[OsString]| {
        shell_command(program, args)
            .map_err(|why| Error::new(ErrorKind::InvalidInput, format!("{launcher}: the shim's copy: {why}"), None))
    };
    let copy = quoted(&copy[0], &copy[1..])?;
    let remove = quoted(&remove.program, &remove.args)?;
    // SIGPIPE ignored: a caller gone before it heard "copied" must not
    // take the removal with it.
    let script = format!(
        "trap '' PIPE\n{copy} || exit 1\nprintf 'copied\\n'\nexec 2>/dev/null\nIFS= read -r word\n\
         [ \"$word\" = keep ] && exit 0\n{remove} >/dev/null 2>&1\n"
    );
    tracing::debug!(copy, remove, "copying the shim into the container");
    let sh = ProgramSpec { program: "sh".into(), args: vec!["-c".into(), script.into()], ..ProgramSpec::default() };
    let (stream, process, stderr) = spawn_on_stream(&sh, true, "sh")?;
    let mut stream = UnixStream::from(stream);
    let (heard, timed_out) = read_within(&mut stream, deadline, COPIED.len(), |b| b.starts_with(COPIED));
    if heard.starts_with(COPIED) {
        drop(stderr);
        return Ok(Janitor { stream, process: Some(process) });
    }
    // Closing its stdin has it remove whatever of the copy landed.
    drop(stream);
    let status = match process.wait_deadline(Some(Instant::now() + Duration::from_secs(10))) {
        Ok(Some(status)) => format!("{status:?}"),
        _ => {
            sys::adopt(process);
            "did not end".into()
        }
    };
    let said = said_on(stderr);
    let (kind, why) = if timed_out {
        (ErrorKind::TimedOut, "it did not finish within the connect timeout".to_string())
    } else {
        (ErrorKind::LauncherRefused, format!("{status}: {}", said.trim()))
    };
    Err(Error::new(kind, format!("{launcher} could not copy the shim into the container ({why})"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for `name` with `mode`, `uid` and type `kind`.
    fn header(name: &str, mode: u32, uid: u64, kind: u8, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
        h[108..115].copy_from_slice(format!("{uid:07o}").as_bytes());
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    #[test]
    fn the_first_entry_of_an_archive() {
        let tmp = header("tmp/", 0o1777, 0, b'5', 0);
        assert_eq!(first_entry(&tmp), Some(Ok(Entry { mode: 0o1777, uid: 0, kind: b'5' })));
        assert_eq!(first_entry(&tmp[..300]), None, "more bytes are needed");
        assert_eq!(first_entry(&[0u8; 1024]), Some(Err("an empty archive")));
        let mut bad = tmp.clone();
        bad[100] = b'7';
        assert_eq!(first_entry(&bad), Some(Err("a header with a bad checksum")));
        // A PAX header first, whose uid overrides the entry's.
        let record = "13 uid=70000\n";
        let mut archive = header("PaxHeaders/tmp", 0o644, 0, b'x', record.len());
        let mut data = record.as_bytes().to_vec();
        data.resize(512, 0);
        archive.extend(data);
        archive.extend(header("tmp/", 0o755, 0, b'5', 0));
        assert_eq!(first_entry(&archive), Some(Ok(Entry { mode: 0o755, uid: 70000, kind: b'5' })));
        assert_eq!(first_entry(&archive[..600]), None);
    }

    #[test]
    fn a_directory_is_safe_when_root_keeps_it() {
        let dir = |mode, uid| Entry { mode, uid, kind: b'5' };
        assert_eq!(judge(&dir(0o1777, 0), true), Ok(()), "a sticky /tmp");
        assert_eq!(judge(&dir(0o755, 0), true), Ok(()), "root's /");
        assert!(judge(&dir(0o777, 0), true).unwrap_err().contains("without the sticky bit (mode 0777)"));
        assert!(judge(&dir(0o775, 0), true).unwrap_err().contains("sticky"), "group-writable too");
        assert!(
            judge(&dir(0o1777, 1000), true).unwrap_err().contains("uid 1000"),
            "its owner may remove anything in it"
        );
        assert_eq!(judge(&dir(0o1777, 1000), false), Ok(()), "an owner the archive does not keep is not judged");
        assert!(judge(&dir(0o777, 1000), false).unwrap_err().contains("sticky"), "the mode still is");
        assert!(judge(&Entry { mode: 0o777, uid: 0, kind: b'2' }, true).unwrap_err().contains("not a plain directory"));
    }

    proptest::proptest! {
        /// Whatever the bytes, the reader answers without panicking.
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = first_entry(&bytes);
        }
    }

    /// [`COPY_FROM_INSIDE`] run by this machine's `sh` (the container tests
    /// run it with busybox's): `$1` length, `$2` name, then the places;
    /// what it printed, what it said and its exit code.
    fn copy_inside(input: &[u8], len: usize, name: &str, places: &[&std::path::Path]) -> (String, String, i32) {
        use std::io::Write as _;
        // timeout(1): a script that never ends fails the test instead.
        let mut sh = std::process::Command::new("timeout")
            .args(["30", "sh", "-c", COPY_FROM_INSIDE, "sh", &len.to_string(), name])
            .args(places)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = sh.stdin.take().unwrap();
        // The script reads only once it found a place: a refusal is a
        // broken pipe here, not an error.
        let _ = stdin.write_all(input);
        drop(stdin);
        let out = sh.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        (text(&out.stdout), text(&out.stderr), out.status.code().unwrap_or(-1))
    }

    /// A fresh directory for one case, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(case: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("umbilical-test-inside-{}-{case}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            Scratch(dir)
        }

        fn place(&self, name: &str, mode: u32) -> PathBuf {
            use std::os::unix::fs::PermissionsExt as _;
            let place = self.0.join(name);
            std::fs::create_dir(&place).unwrap();
            std::fs::set_permissions(&place, std::fs::Permissions::from_mode(mode)).unwrap();
            place
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The copy made from inside goes to the first place that exists and
    /// keeps what its user puts there (a missing one and one anyone may
    /// rename in are passed over), into a private directory, whole, with
    /// the file and its directory 0755.
    #[test]
    fn copy_from_inside_takes_the_first_safe_place() {
        use std::os::unix::fs::PermissionsExt as _;
        let scratch = Scratch::new("first");
        let open = scratch.place("open", 0o777);
        let safe = scratch.place("safe", 0o1777);
        let missing = scratch.0.join("missing");
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (out, said, code) = copy_inside(&input, input.len(), "n1", &[&missing, &open, &safe]);
        let copy = safe.join("umbilical-n1/shim");
        assert_eq!((out.as_str(), code), (format!("copied {}", copy.display()).as_str(), 0), "{said}");
        assert_eq!(std::fs::read(&copy).unwrap(), input);
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!((mode(&copy), mode(copy.parent().unwrap())), (0o755, 0o755));
        assert!(std::fs::read_dir(&open).unwrap().next().is_none(), "nothing in the place anyone may rename in");
    }

    /// A name taken before us (a symlink planted by a user who read it in
    /// `ps`) is never written through: that place is passed over, and
    /// with no other the script says why and exits 3. A copy that comes
    /// short of its length is removed, with its directory (exit 1).
    #[test]
    fn copy_from_inside_writes_through_nothing_and_keeps_nothing_short() {
        let scratch = Scratch::new("planted");
        let safe = scratch.place("safe", 0o1777);
        let target = scratch.place("target", 0o755);
        std::os::unix::fs::symlink(&target, safe.join("umbilical-n2")).unwrap();
        let (out, said, code) = copy_inside(b"payload", 7, "n2", &[&safe]);
        assert_eq!((out.as_str(), code), ("", 3), "{said}");
        assert!(said.contains("no directory among"), "{said}");
        assert!(std::fs::read_dir(&target).unwrap().next().is_none(), "nothing written through the symlink");
        let (out, said, code) = copy_inside(b"short", 1000, "n3", &[&safe]);
        assert_eq!((out.as_str(), code), ("", 1), "{said}");
        assert!(!safe.join("umbilical-n3").exists(), "the short copy and its directory are gone");
    }

    /// The copy from inside, planned through each engine (kubectl has no
    /// cluster here: its plan is what is checked), as the container's
    /// default user whatever user the program runs as.
    #[test]
    fn copy_from_inside_plans() {
        use crate::exit::ExitDetection;
        use crate::launcher::{Engine, Launcher};
        let spec = inside_copy(1234, "abc");
        for (engine, target, head) in [
            (Engine::Docker, "web", vec!["docker", "exec", "-i", "web"]),
            (Engine::Podman, "web", vec!["podman", "exec", "-i", "web"]),
            (Engine::Kubectl, "prod/api-0", vec!["kubectl", "exec", "-i", "-n", "prod", "api-0", "--"]),
        ] {
            let user = (engine != Engine::Kubectl).then(|| "app".to_string());
            let launcher = Launcher::ContainerExec { engine, target: target.into(), user }.as_default_user();
            let wrapped = launcher.wrap(&spec, ExitDetection::Process, false).unwrap().unwrap().spec;
            let argv: Vec<String> = std::iter::once(&wrapped.program)
                .chain(&wrapped.args)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let mut want: Vec<String> = head.iter().map(|s| s.to_string()).collect();
            want.extend(
                ["sh", "-c", COPY_FROM_INSIDE, "sh", "1234", "abc", "/dev/shm", "/tmp", "/run"].map(String::from),
            );
            assert_eq!(argv, want, "{engine:?}");
        }
    }
}
