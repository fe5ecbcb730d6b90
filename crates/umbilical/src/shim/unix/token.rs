//! The token that proves both ends of a Unix shim's handshake.
//!
//! The parent writes a fresh token into the channel once. Only the holder
//! of the program's end can read it: the shim proves itself with the first
//! half in its hello, and trusts the parent once the parent answered with
//! the second half, which only the writer of the channel knows. A process
//! that reached the rendezvous (or an in-band bridge) first cannot prove
//! anything, and is given nothing.

use std::io;

use crate::protocol::Message;
use crate::sys;

/// Bytes of the token the parent writes into the channel.
pub(super) const TOKEN_LEN: usize = 32;
const PROOF_LEN: usize = TOKEN_LEN / 2;

/// The parent's token for one launch.
pub(super) struct Token([u8; TOKEN_LEN]);

impl Token {
    /// A fresh token from the OS's random source.
    pub(super) fn new() -> io::Result<Token> {
        sys::random_token::<TOKEN_LEN>().map(Token)
    }

    /// What goes into the channel.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `hello` proves its sender read the token from the channel.
    pub(super) fn proven_by(&self, hello: &Message) -> bool {
        matches!(hello, Message::Hello { token, .. } if same_secret(token, &self.0[..PROOF_LEN]))
    }

    /// The parent's answer: the second half.
    pub(super) fn welcome(&self) -> Message {
        Message::Welcome { token: self.0[PROOF_LEN..].to_vec() }
    }
}

/// The shim's side: its hello for the token it read from its stdin.
pub(super) fn hello(read: &[u8; TOKEN_LEN]) -> Message {
    Message::Hello { shim_pid: std::process::id(), token: read[..PROOF_LEN].to_vec() }
}

/// The shim's side: whether `welcome` carries the token's second half.
pub(super) fn welcome_proves_parent(read: &[u8; TOKEN_LEN], welcome: &[u8]) -> bool {
    same_secret(welcome, &read[PROOF_LEN..])
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token as a typed line (lowercase hex): what the parent types on a
/// launcher's terminal when the shim's stdin is that terminal (su), where
/// raw bytes would be taken for control characters.
pub(super) fn typed(token: &[u8]) -> String {
    token.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the typed token (see [`typed`]) from the terminal `stdin`, up to
/// its line end, by `deadline`.
pub(super) fn read_typed(stdin: &crate::sys::Handle, deadline: std::time::Instant) -> io::Result<[u8; TOKEN_LEN]> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "the typed token is not one");
    let mut line = Vec::with_capacity(2 * TOKEN_LEN + 2);
    let mut byte = [0u8; 1];
    while line.len() <= 2 * TOKEN_LEN + 1 {
        match crate::sys::read_until(stdin, &mut byte, Some(deadline))? {
            None => return Err(io::Error::new(io::ErrorKind::TimedOut, "no token typed in time")),
            Some(0) => return Err(bad()),
            Some(_) if byte[0] == b'\n' => break,
            Some(_) => line.push(byte[0]),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() != 2 * TOKEN_LEN {
        return Err(bad());
    }
    let mut token = [0u8; TOKEN_LEN];
    for (i, pair) in line.chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).map_err(|_| bad())?;
        token[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_half_proves_one_side() {
        let token = Token::new().unwrap();
        let read: [u8; TOKEN_LEN] = token.bytes().try_into().unwrap();
        assert!(token.proven_by(&hello(&read)));
        let Message::Welcome { token: answer } = token.welcome() else { panic!() };
        assert!(welcome_proves_parent(&read, &answer));
        // The halves are not interchangeable, and a stranger's guess fails.
        assert!(!welcome_proves_parent(&read, &read[..PROOF_LEN]));
        let stranger = Message::Hello { shim_pid: 1, token: vec![0; PROOF_LEN] };
        assert!(!token.proven_by(&stranger));
        assert!(!token.proven_by(&Message::Hello { shim_pid: 1, token: Vec::new() }));
        assert!(!token.proven_by(&Message::PidConfirmed));
        assert_ne!(Token::new().unwrap().bytes(), token.bytes(), "fresh per launch");
    }

    #[test]
    fn a_typed_token_reads_back() {
        let token: Vec<u8> = (0..TOKEN_LEN as u8).map(|i| i.wrapping_mul(37)).collect();
        let (r, w) = crate::sys::inbound_pipe().unwrap();
        let line = format!("{}\r\n", typed(&token));
        crate::sys::write_pipe(&w, line.as_bytes()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        assert_eq!(read_typed(&r, deadline).unwrap().to_vec(), token);
        crate::sys::write_pipe(&w, b"not-hex\n").unwrap();
        assert_eq!(read_typed(&r, deadline).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
