//! The kernel-lab tier (`tests/klab/`, see docs/kernel-lab.md): boots a stock Debian kernel under
//! QEMU and proves qosctl against netem, fw, fq_codel, cake and sfq with real traffic — the
//! features this machine's kernel lacks.
//!
//! It takes minutes of both cores, so under `cargo test` it is opt-in:
//! `QOSCTL_KLAB=1 cargo test --test klab -- --nocapture`. CI calls `tests/klab/run-tier.sh`
//! directly. Skips (with a message) without root or without qemu-system-x86_64.

mod common;
use common::is_root;

use std::path::Path;
use std::process::Command;

#[test]
fn kernel_lab_tier() {
    if std::env::var_os("QOSCTL_KLAB").is_none() {
        eprintln!(
            "SKIP: the kernel-lab tier is opt-in under cargo test (set QOSCTL_KLAB=1); \
             CI runs tests/klab/run-tier.sh"
        );
        return;
    }
    if !is_root() {
        eprintln!("SKIP: the kernel-lab tier needs root");
        return;
    }
    if which::which("qemu-system-x86_64").is_err() {
        eprintln!("SKIP: qemu-system-x86_64 missing; run tests/klab/install-qemu.sh");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The tier builds the static qosctl with cargo; a separate target dir keeps that build from
    // waiting on the lock of the `cargo test` that runs us.
    let status = Command::new(root.join("tests/klab/run-tier.sh"))
        .env("CARGO_TARGET_DIR", root.join("target/klab-cargo"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) if s.code() == Some(77) => eprintln!("SKIP: run-tier.sh skipped (see above)"),
        Ok(s) => panic!(
            "kernel-lab tier failed ({s}); results in target/klab/summary.txt and \
             target/klab/<variant>/out/results.tsv"
        ),
        Err(e) => panic!("cannot run tests/klab/run-tier.sh: {e}"),
    }
}
