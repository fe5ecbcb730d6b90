//! A program in a container: `wc -c` run by `docker exec -i` (or podman),
//! fed through the channel, half-closed so that it counts, its answer read
//! back and its exit code taken.
//!
//! ```text
//! cargo run -p umbilical --example in_container -- docker CONTAINER
//! cargo run -p umbilical --example in_container -- podman CONTAINER
//! ```
//!
//! Without the shim (it cannot reach a container yet) the engine's codes
//! are what comes back: a death by signal is 128+N, and docker's "no such
//! container" is exit 1, which a program could return too (the README's
//! launcher table says what each engine reports).

use std::io::{Read, Write};

use umbilical::{Command, Engine, Launcher};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [engine, container] = &args[..] else {
        return Err("usage: in_container docker|podman CONTAINER".into());
    };
    let engine = match engine.as_str() {
        "docker" => Engine::Docker,
        "podman" => Engine::Podman,
        other => return Err(format!("unknown engine {other:?}").into()),
    };
    let mut child =
        Command::new("wc").arg("-c").launcher(Launcher::ContainerExec { engine, target: container.clone() }).spawn()?;
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
    Ok(())
}
