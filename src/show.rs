//! `qosctl show`.

use anyhow::{bail, Result};

use crate::cli::{Global, ShowArgs};
use crate::Exit;

pub fn run(_global: &Global, _args: &ShowArgs) -> Result<Exit> {
    bail!("qosctl show is not implemented yet")
}
