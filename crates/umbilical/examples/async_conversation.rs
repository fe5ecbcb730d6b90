//! The line-by-line conversation of `conversation.rs`, on tokio: many
//! helpers at once on one thread, each a child with no thread of its own.
//!
//! ```text
//! cargo run -p umbilical --features tokio --example async_conversation
//! ```

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use umbilical::Command;

const HELPER: &str = r#"while IFS= read -r line; do printf '%s %d\n' "$line" "${#line}"; done; exit 3"#;

async fn converse(id: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut child = Command::new("sh").args(["-c", HELPER]).spawn_async().await?;
    let (reader, mut writer) = child.take_channel().expect("the channel").split();
    let mut answers = BufReader::new(reader).lines();
    for n in 0..3 {
        let request = format!("helper {id} request {n}");
        writer.write_all(format!("{request}\n").as_bytes()).await?;
        let answer = answers.next_line().await?.ok_or("the helper hung up")?;
        assert_eq!(answer, format!("{request} {}", request.len()));
    }
    writer.shutdown().await?; // the half-close: the helper's loop ends
    assert_eq!(answers.next_line().await?, None);
    assert_eq!(child.wait().await?.code(), Some(3));
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for id in 0..50 {
            set.spawn(async move { converse(id).await.map_err(|e| e.to_string()) });
        }
        let mut done = 0;
        while let Some(r) = set.join_next().await {
            r??;
            done += 1;
        }
        println!("{done} conversations, each with its exact status, on one thread");
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
