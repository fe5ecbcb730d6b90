//! Scale on the async API: 1,000 children alive at once on one
//! `current_thread` runtime, each a 64 KiB round trip with half-close
//! through the helper's echo. Byte-exact; the process's thread count (read
//! from the OS) does not grow with the number of children; descriptors
//! back to their start afterwards. Alone in its test binary, so no other
//! test's threads or descriptors blur the counts.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHILDREN: usize = 1000;
const BYTES: usize = 64 * 1024;

/// This process's thread count, from `/proc/self/status`.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("Threads:")).expect("a Threads line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Room for the children's descriptors: the soft limit raised to the hard
/// one, as any program holding a thousand children must.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    setrlimit(Resource::Nofile, lim).expect("raise RLIMIT_NOFILE to its hard limit");
}

#[test]
fn a_thousand_children_on_one_thread() {
    raise_fd_limit();
    let (before, alive, after_round_trips, fds_before) =
        bounded(std::time::Duration::from_secs(300), "1,000 children", || {
            // Counted before the runtime's own descriptors (epoll, eventfd),
            // and again after it is dropped.
            let fds_before = open_fd_count();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let before = threads();
            let (alive, after) = rt.block_on(async {
                let mut children = Vec::with_capacity(CHILDREN);
                for _ in 0..CHILDREN {
                    children.push(helper(&["echo"]).spawn_async().await.expect("spawn"));
                }
                // All alive at once: each echo waits for its input.
                let alive = threads();
                let mut tasks = tokio::task::JoinSet::new();
                for (i, mut child) in children.into_iter().enumerate() {
                    tasks.spawn(async move {
                        let payload = pattern(BYTES, i as u64 + 1);
                        let (mut r, mut w) = child.take_channel().unwrap().split();
                        let write = async {
                            w.write_all(&payload).await.expect("write");
                            w.shutdown().await.expect("half-close");
                        };
                        let mut out = Vec::with_capacity(BYTES);
                        let read = r.read_to_end(&mut out);
                        let ((), n) = tokio::join!(write, read);
                        n.expect("read");
                        assert!(out == payload, "child {i}: 64 KiB echoed byte-exact");
                        assert!(child.wait().await.expect("wait").success(), "child {i} exits 0");
                    });
                }
                let mut done = 0;
                while let Some(r) = tasks.join_next().await {
                    r.expect("a child's task");
                    done += 1;
                }
                assert_eq!(done, CHILDREN);
                (alive, threads())
            });
            (before, alive, after, fds_before)
        });
    let fds_after = open_fd_count();
    eprintln!(
        "{CHILDREN} children: threads {before} before, {alive} with all alive, {after_round_trips} after; descriptors {fds_before} before, {fds_after} after"
    );
    assert_eq!(alive, before, "no thread per child: {before} threads before, {alive} with {CHILDREN} alive");
    assert_eq!(after_round_trips, before, "no thread left after the round trips");
    assert_eq!(fds_after, fds_before, "every descriptor closed afterwards");
}
