//! `qosctl apply`.

use anyhow::{bail, Result};

use crate::cli::{ApplyArgs, Global};
use crate::Exit;

pub fn run(_global: &Global, _args: &ApplyArgs) -> Result<Exit> {
    bail!("qosctl apply is not implemented yet")
}
