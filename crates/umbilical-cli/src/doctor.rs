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
const LAUNCHERS: &[&str] = &["sudo", "doas", "pkexec", "runuser", "su", "ssh", "docker", "podman", "kubectl"];

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn os_version() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "unknown".into())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn doctor(args: DoctorArgs) -> ExitCode {
    let launchers: Vec<(&str, Option<PathBuf>)> = LAUNCHERS.iter().map(|&l| (l, find_on_path(l))).collect();
    let spawn = umbilical::mechanisms::spawn();
    let exit = umbilical::mechanisms::exit();
    if args.json {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let list: Vec<String> = launchers
            .iter()
            .map(|(name, path)| match path {
                Some(p) => format!("\"{name}\": \"{}\"", esc(&p.display().to_string())),
                None => format!("\"{name}\": null"),
            })
            .collect();
        println!(
            "{{\"os\": \"{}\", \"os_version\": \"{}\", \"kernel\": \"{}\", \"arch\": \"{}\", \"spawn\": \"{}\", \"exit_detection\": \"{}\", \"launchers\": {{{}}}}}",
            std::env::consts::OS,
            esc(&os_version()),
            esc(&kernel()),
            std::env::consts::ARCH,
            esc(spawn),
            esc(exit),
            list.join(", ")
        );
    } else {
        println!(
            "os:             {} ({}), kernel {}, {}",
            std::env::consts::OS,
            os_version(),
            kernel(),
            std::env::consts::ARCH
        );
        println!("spawn:          {spawn}");
        println!("exit detection: {exit}");
        println!("launchers on PATH:");
        for (name, path) in &launchers {
            match path {
                Some(p) => println!("  {name:<8} {}", p.display()),
                None => println!("  {name:<8} (not found)"),
            }
        }
    }
    ExitCode::SUCCESS
}
