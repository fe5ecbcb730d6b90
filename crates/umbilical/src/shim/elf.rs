//! Whether a shim binary can be copied into a container and run there:
//! an ELF executable with no program interpreter (`PT_INTERP`), so it
//! needs no C library from the image. A glibc-less image (busybox,
//! distroless, Alpine's musl) cannot run a dynamically linked shim.

use std::io::Read;
use std::path::Path;

/// What the file at a path is, for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linkage {
    /// An ELF executable that needs no interpreter.
    Static,
    /// An ELF executable that names an interpreter (the dynamic loader).
    Dynamic,
    /// Not an ELF file (a Mach-O or PE binary, a script), or unreadable.
    NotElf,
}

const PT_INTERP: u32 = 3;

/// Reads the ELF header and program headers of the file at `path`.
pub(crate) fn linkage(path: &Path) -> Linkage {
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(HEAD as u64).read_to_end(&mut head));
    if read.is_err() {
        return Linkage::NotElf;
    }
    linkage_of(&head)
}

/// [`linkage`] of a file held in memory.
pub(crate) fn linkage_of(bytes: &[u8]) -> Linkage {
    parse(&bytes[..bytes.len().min(HEAD)]).unwrap_or(Linkage::NotElf)
}

/// How much of a file is read for its headers: program headers sit right
/// after the 64-byte header in practice, and 4 KiB covers dozens of them.
const HEAD: usize = 4096;

/// The linkage from the first bytes of a file; `None` when they are not a
/// whole ELF header and program header table.
fn parse(b: &[u8]) -> Option<Linkage> {
    if b.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match b.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let int = |at: usize, len: usize| -> Option<u64> {
        let bytes = b.get(at..at + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { bytes[len - 1 - i] } else { bytes[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (int(0x20, 8)?, int(0x36, 2)?, int(0x38, 2)?)
    } else {
        (int(0x1c, 4)?, int(0x2a, 2)?, int(0x2c, 2)?)
    };
    let (phoff, phentsize) = (usize::try_from(phoff).ok()?, usize::try_from(phentsize).ok()?);
    for i in 0..usize::try_from(phnum).ok()? {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if int(at, 4)? == u64::from(PT_INTERP) {
            return Some(Linkage::Dynamic);
        }
    }
    Some(Linkage::Static)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_system_binary_is_dynamic() {
        // /bin/sh is dynamically linked on every glibc distribution CI runs.
        if cfg!(target_os = "linux") {
            assert_eq!(linkage(Path::new("/bin/sh")), Linkage::Dynamic);
        }
    }

    #[test]
    fn not_elf() {
        assert_eq!(parse(b"#!/bin/sh\n"), None);
        assert_eq!(parse(b"\x7fELF"), None);
        assert_eq!(linkage(Path::new("/nonexistent/shim")), Linkage::NotElf);
    }

    #[test]
    fn headers_without_interp_are_static() {
        // A 64-bit little-endian header with one PT_LOAD program header.
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20] = 64;
        b[0x36] = 56;
        b[0x38] = 1;
        b[64] = 1;
        assert_eq!(parse(&b), Some(Linkage::Static));
        b[64] = 3;
        assert_eq!(parse(&b), Some(Linkage::Dynamic));
    }
}
