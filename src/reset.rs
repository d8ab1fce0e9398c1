//! `qosctl reset`.

use anyhow::{bail, Result};

use crate::cli::{Global, ResetArgs};
use crate::Exit;

pub fn run(_global: &Global, _args: &ResetArgs) -> Result<Exit> {
    bail!("qosctl reset is not implemented yet")
}
