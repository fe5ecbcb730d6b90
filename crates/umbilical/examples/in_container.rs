//! A program in a container: `wc -c` run by `docker exec -i` (or podman),
//! fed through the channel, half-closed so that it counts, its answer read
//! back and its exit code taken.
//!
//! ```text
//! cargo run -p umbilical --example in_container -- docker CONTAINER [STATIC_SHIM]
//! cargo run -p umbilical --example in_container -- podman CONTAINER [STATIC_SHIM]
//! ```
//!
//! With STATIC_SHIM (a static `umbilical-shim`, see
//! `Command::shim_source`) the shim is copied into the container and
//! removed again: the status is exact (`Signaled` for a death by signal), a
//! missing container is `LauncherRefused` and a kill reaches the program;
//! this example then also shows a `sleep` killed inside the container.
//! Without it the engine's codes are what comes back: a death by signal is
//! 128+N, and docker's "no such container" is exit 1, which a program could
//! return too (the README's launcher table says what each engine reports).

use std::io::{Read, Write};

use umbilical::{Command, Engine, Launcher};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (engine, container, shim) = match &args[..] {
        [engine, container] => (engine, container, None),
        [engine, container, shim] => (engine, container, Some(shim)),
        _ => return Err("usage: in_container docker|podman CONTAINER [STATIC_SHIM]".into()),
    };
    let engine = match engine.as_str() {
        "docker" => Engine::Docker,
        "podman" => Engine::Podman,
        other => return Err(format!("unknown engine {other:?}").into()),
    };
    let launcher = Launcher::ContainerExec { engine, target: container.clone(), user: None };
    let with_shim = |cmd: &mut Command| {
        if let Some(shim) = shim {
            cmd.shim(true).shim_source(shim);
        }
    };
    let mut wc = Command::new("wc");
    wc.arg("-c").launcher(launcher.clone());
    with_shim(&mut wc);
    let mut child = wc.spawn()?;
    let mut channel = child.take_channel().expect("the channel");
    let data = vec![b'x'; 100_000];
    channel.write_all(&data)?;
    channel.shutdown_write()?; // EOF inside the container: wc counts
    let mut answer = String::new();
    channel.read_to_string(&mut answer)?;
    let exit = child.wait()?;
    println!("wc -c in {container} counted {} bytes and exited {:?}", answer.trim(), exit.status);
    assert_eq!(answer.trim(), data.len().to_string());
    assert_eq!(exit.code(), Some(0));
    if shim.is_some() {
        // The engines pass no signal from their exec client; the shim does.
        let mut sleep = Command::new("sleep");
        sleep.arg("600").launcher(launcher);
        with_shim(&mut sleep);
        let mut child = sleep.spawn()?;
        child.kill()?;
        let exit = child.wait()?;
        println!("sleep 600 in {container}, killed: {:?}", exit.status);
        assert_eq!(exit.status, umbilical::ExitStatus::Signaled(9));
    }
    Ok(())
}
