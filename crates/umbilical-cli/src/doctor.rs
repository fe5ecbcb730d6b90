//! `umbilical doctor`: the platform facts umbilical depends on.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Launcher programs umbilical knows how to start programs through.
const LAUNCHERS: &[&str] = &[
    "sudo",
    "doas",
    "pkexec",
    "runuser",
    "su",
    "setpriv",
    "nsenter",
    "systemd-run",
    "run0",
    "flatpak-spawn",
    "ssh",
    "docker",
    "podman",
    "kubectl",
];

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

#[cfg(windows)]
fn os_version() -> String {
    let wine = if umbilical::mechanisms::is_wine() { " (Wine)" } else { "" };
    format!("Windows {}{wine}", umbilical::mechanisms::windows_version())
}

#[cfg(not(windows))]
fn os_version() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "unknown".into())
}

fn kernel() -> String {
    if cfg!(windows) {
        return "NT".into();
    }
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The Winsock catalogue as `(name, catalogue id, IFS handles, chain length)`.
#[cfg(windows)]
fn winsock() -> Result<Vec<(String, u32, bool, i32)>, String> {
    umbilical::mechanisms::winsock_catalog()
        .map(|list| list.into_iter().map(|p| (p.name, p.catalog_entry_id, p.ifs_handles, p.chain_len)).collect())
        .map_err(|e| e.to_string())
}

#[cfg(not(windows))]
fn winsock() -> Result<Vec<(String, u32, bool, i32)>, String> {
    Err("not Windows".into())
}

pub fn doctor(args: DoctorArgs) -> ExitCode {
    let launchers: Vec<(&str, Option<PathBuf>)> = LAUNCHERS.iter().map(|&l| (l, find_on_path(l))).collect();
    let spawn = umbilical::mechanisms::spawn();
    let exit = umbilical::mechanisms::exit();
    let shim = umbilical::mechanisms::shim_auth();
    let carried = crate::carried::shim().map(<[u8]>::len);
    if args.json {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let list: Vec<String> = launchers
            .iter()
            .map(|(name, path)| match path {
                Some(p) => format!("\"{name}\": \"{}\"", esc(&p.display().to_string())),
                None => format!("\"{name}\": null"),
            })
            .collect();
        let catalog = match winsock() {
            Ok(list) => {
                let entries: Vec<String> = list
                    .iter()
                    .map(|(name, id, ifs, chain)| {
                        format!("{{\"name\": \"{}\", \"id\": {id}, \"ifs_handles\": {ifs}, \"chain_len\": {chain}, \"non_ifs_lsp\": {}}}", esc(name), !ifs && *chain != 1)
                    })
                    .collect();
                format!(", \"winsock\": [{}]", entries.join(", "))
            }
            Err(_) if !cfg!(windows) => String::new(),
            Err(e) => format!(", \"winsock\": {{\"error\": \"{}\"}}", esc(&e)),
        };
        out!(
            "{{\"os\": \"{}\", \"os_version\": \"{}\", \"kernel\": \"{}\", \"arch\": \"{}\", \"spawn\": \"{}\", \"exit_detection\": \"{}\", \"shim_auth\": \"{}\", \"carried_shim_bytes\": {}, \"launchers\": {{{}}}{catalog}}}",
            std::env::consts::OS,
            esc(&os_version()),
            esc(&kernel()),
            std::env::consts::ARCH,
            esc(spawn),
            esc(exit),
            esc(shim),
            carried.map_or_else(|| "null".to_string(), |n| n.to_string()),
            list.join(", ")
        );
    } else {
        out!(
            "os:             {} ({}), kernel {}, {}",
            std::env::consts::OS,
            os_version(),
            kernel(),
            std::env::consts::ARCH
        );
        out!("spawn:          {spawn}");
        out!("exit detection: {exit}");
        out!("shim auth:      {shim}");
        match carried {
            Some(n) => out!(
                "carried shim:   a static umbilical-shim, {n} bytes (copied into containers, and to far hosts that have none)"
            ),
            None => out!("carried shim:   none in this build (containers need --shim-source or --shim-path)"),
        }
        if cfg!(windows) {
            out!("runas:          ShellExecuteExW \"runas\" (built in; always through the shim)");
        }
        out!("launchers on PATH:");
        for (name, path) in &launchers {
            match path {
                Some(p) => out!("  {name:<8} {}", p.display()),
                None => out!("  {name:<8} (not found)"),
            }
        }
        if cfg!(windows) {
            match winsock() {
                Ok(list) => {
                    let lsps = list.iter().filter(|p| !p.2 && p.3 != 1).count();
                    out!("winsock catalogue ({} providers, {lsps} non-IFS layered providers):", list.len());
                    for (name, id, ifs, chain) in &list {
                        let mark = match (*ifs, *chain == 1) {
                            (true, _) => "",
                            (false, true) => "  (base provider without XP1_IFS_HANDLES)",
                            (false, false) => "  <- non-IFS LSP: inherited sockets break",
                        };
                        out!("  [{id}] {name} (chain {chain}){mark}");
                    }
                }
                Err(e) => out!("winsock catalogue: cannot enumerate: {e}"),
            }
        }
    }
    ExitCode::SUCCESS
}
