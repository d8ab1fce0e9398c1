//! `qosctl check`.

use anyhow::Result;

use crate::cli::CheckArgs;
use crate::Exit;

pub fn run(args: &CheckArgs) -> Result<Exit> {
    crate::policy::load(&args.policy)?;
    Ok(Exit::Ok)
}
