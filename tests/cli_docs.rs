//! The committed completions and man page are generated from the clap definition; this
//! test fails when they drift from it. Regenerate with `QOSCTL_REGEN=1 cargo test --test cli_docs`.

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::Path;

fn generated() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "completions/qosctl.bash"),
        (Shell::Zsh, "completions/_qosctl"),
        (Shell::Fish, "completions/qosctl.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut qosctl::cli::Cli::command(), "qosctl", &mut buf);
        out.push((file.to_string(), buf));
    }
    let mut man = Vec::new();
    clap_mangen::Man::new(qosctl::cli::Cli::command())
        .render(&mut man)
        .expect("render man page");
    out.push(("man/qosctl.1".to_string(), man));
    // One page per subcommand, as git and cargo do: `man qosctl-apply`.
    let cmd = qosctl::cli::Cli::command();
    for sub in cmd.get_subcommands() {
        // clap names are &'static str without its `string` feature; a test may leak four.
        let name: &'static str = Box::leak(format!("qosctl-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .expect("render man page");
        out.push((format!("man/{name}.1"), page));
    }
    out
}

#[test]
fn completions_and_man_page_match_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regen = std::env::var_os("QOSCTL_REGEN").is_some();
    let mut stale = Vec::new();
    for (file, want) in generated() {
        let path = root.join(&file);
        if regen {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        match std::fs::read(&path) {
            Ok(have) if have == want => {}
            _ => stale.push(file),
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} drifted from src/cli.rs; run: QOSCTL_REGEN=1 cargo test --test cli_docs"
    );
}
