//! What to run: the program, its arguments, its environment changes and its
//! working directory. The builder holds one, the shim's request carries
//! one, and the shim rebuilds one on the far side.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub(crate) struct ProgramSpec {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    /// Start from an empty environment.
    pub(crate) env_clear: bool,
    /// Changes on top of the inherited (or cleared) environment; `None`
    /// removes the variable.
    pub(crate) env: BTreeMap<OsString, Option<OsString>>,
    pub(crate) cwd: Option<PathBuf>,
}
