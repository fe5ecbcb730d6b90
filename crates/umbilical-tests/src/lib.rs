//! Test support shared by the helper program and the integration tests:
//! the few OS calls they need that std does not offer, kept under `sys/`
//! like the library's own.

pub mod sys;
