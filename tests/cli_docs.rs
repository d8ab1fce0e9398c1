//! The committed completions and man pages are generated from the clap definition; this
//! test fails when they drift from it. Regenerate with `QOSCTL_REGEN=1 cargo test --test cli_docs`.
//!
//! The other tests here hold the pages and completions to what a user needs: a SYNOPSIS
//! that parses as a command, the global options on every subcommand page that takes them,
//! no reference to a page that does not exist, the policy page (section 5) covering every
//! key with examples that pass `qosctl check`, and completions offering namespaces and
//! devices.

mod common;

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const QOSCTL: &str = env!("CARGO_BIN_EXE_qosctl");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The command as the man pages describe it: globals propagated into the subcommands
/// (so their pages list --netns and --tc), and no `help` subcommand, which has no page.
fn documented() -> Command {
    let mut cmd = qosctl::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Roff for a literal word (`\-` for every hyphen).
fn lit(s: &str) -> String {
    format!("\\fB{}\\fR", s.replace('-', "\\-"))
}

fn placeholder(s: &str) -> String {
    format!("\\fI{}\\fR", s.replace('-', "\\-"))
}

fn shown(a: &Arg) -> bool {
    !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version")
}

/// One argument in synopsis form: `--policy POLICY`, `-q|--quiet`, `DEV...`.
fn arg_form(a: &Arg) -> String {
    let value = a
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
    let many = a.get_num_args().is_some_and(|n| n.max_values() > 1)
        || matches!(a.get_action(), ArgAction::Append);
    let dots = if many { "..." } else { "" };
    let takes_value = a.get_action().takes_values();
    if a.is_positional() {
        return format!("{}{dots}", placeholder(&value));
    }
    let mut s = match (a.get_short(), a.get_long()) {
        (Some(sh), Some(l)) => format!("{}|{}", lit(&format!("-{sh}")), lit(&format!("--{l}"))),
        (None, Some(l)) => lit(&format!("--{l}")),
        (Some(sh), None) => lit(&format!("-{sh}")),
        (None, None) => String::new(),
    };
    if takes_value {
        write!(s, " {}{dots}", placeholder(&value)).unwrap();
    }
    s
}

/// `qosctl [--netns NAME] [--tc PATH] apply [--dry-run] ... POLICY`: a command one can type.
/// Arguments of a required group are alternatives: `(POLICY | --dev DEV...)`.
fn synopsis(top: &Command, sub: Option<&Command>) -> String {
    let mut line = lit("qosctl");
    let globals: Vec<&Arg> = top.get_arguments().filter(|a| shown(a)).collect();
    let own: Vec<&Arg> = match sub {
        // A subcommand's own copy of a global keeps the global's place, before its name.
        Some(s) => s
            .get_arguments()
            .filter(|a| shown(a) && !a.is_global_set())
            .collect(),
        None => Vec::new(),
    };
    let takes_globals = sub.is_none_or(|s| {
        s.get_arguments()
            .any(|a| a.is_global_set() && !a.is_hide_set())
    });
    if takes_globals {
        for g in &globals {
            write!(line, " [{}]", arg_form(g)).unwrap();
        }
    }
    let Some(sub) = sub else {
        write!(
            line,
            " {} [{}]",
            placeholder("COMMAND"),
            placeholder("ARGS")
        )
        .unwrap();
        return line;
    };
    write!(line, " {}", lit(sub.get_name())).unwrap();
    let mut grouped: Vec<&str> = Vec::new();
    for g in sub.get_groups().filter(|g| g.is_required_set()) {
        let alts: Vec<String> = g
            .get_args()
            .filter_map(|id| own.iter().find(|a| a.get_id() == id))
            .map(|a| arg_form(a))
            .collect();
        grouped.extend(g.get_args().map(|id| id.as_str()));
        write!(line, " ({})", alts.join(" | ")).unwrap();
    }
    let rest = own
        .iter()
        .filter(|a| !grouped.contains(&a.get_id().as_str()));
    // Options first, then positionals, as people type them.
    let (pos, opts): (Vec<&&Arg>, Vec<&&Arg>) = rest.partition(|a| a.is_positional());
    for a in opts.into_iter().chain(pos) {
        if a.is_required_set() {
            write!(line, " {}", arg_form(a)).unwrap();
        } else {
            write!(line, " [{}]", arg_form(a)).unwrap();
        }
    }
    line
}

/// One man page: clap_mangen's sections, with our SYNOPSIS and a SEE ALSO.
fn page(cmd: Command, name: &'static str, synopsis: String, see_also: &[&str]) -> Vec<u8> {
    let has_subcommands = cmd.has_subcommands();
    let has_extra = cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some();
    let man = clap_mangen::Man::new(cmd.name(name).version(env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    out.extend(format!(".SH SYNOPSIS\n{synopsis}\n").into_bytes());
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    if has_subcommands {
        man.render_subcommands_section(&mut out).unwrap();
    }
    if has_extra {
        man.render_extra_section(&mut out).unwrap();
    }
    let refs: Vec<String> = see_also
        .iter()
        .map(|r| {
            let (n, sec) = r.split_once('(').unwrap();
            format!(".BR {} ({}", n.replace('-', "\\-"), sec)
        })
        .collect();
    out.extend(format!(".SH \"SEE ALSO\"\n{}\n", refs.join(",\n")).into_bytes());
    man.render_version_section(&mut out).unwrap();
    // Each clap_mangen section repeats the two-line preamble that defines \*(Aq: keep one.
    let text = String::from_utf8(out).unwrap();
    let preamble = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let mut parts = text.split(preamble);
    let mut once = parts.next().unwrap_or_default().to_string();
    once.push_str(preamble);
    for p in parts {
        once.push_str(p);
    }
    once.into_bytes()
}

fn generated() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    // Registration scripts: the shell asks `qosctl` itself for candidates when Tab is
    // pressed (clap_complete's dynamic engine), so namespaces and devices are current.
    let shells: [(&dyn EnvCompleter, &str); 3] = [
        (&Bash, "completions/qosctl.bash"),
        (&Zsh, "completions/_qosctl"),
        (&Fish, "completions/qosctl.fish"),
    ];
    for (shell, file) in shells {
        let mut buf = Vec::new();
        shell
            .write_registration("COMPLETE", "qosctl", "qosctl", "qosctl", &mut buf)
            .unwrap();
        out.push((file.to_string(), buf));
    }
    let cmd = documented();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| format!("qosctl-{}(1)", s.get_name()))
        .collect();
    let mut top_refs: Vec<&str> = subs.iter().map(String::as_str).collect();
    top_refs.extend(["qosctl.toml(5)", "tc(8)", "tc-htb(8)"]);
    out.push((
        "man/qosctl.1".into(),
        page(cmd.clone(), "qosctl", synopsis(&cmd, None), &top_refs),
    ));
    // One page per subcommand, as git and cargo do: `man qosctl-apply`.
    for sub in cmd.get_subcommands() {
        // clap names are &'static str without its `string` feature; a test may leak a few.
        let name: &'static str = Box::leak(format!("qosctl-{}", sub.get_name()).into_boxed_str());
        let mut refs = vec!["qosctl(1)"];
        if sub.get_arguments().any(|a| a.get_id() == "policy") {
            refs.push("qosctl.toml(5)");
        }
        if sub.get_name() != "check" {
            refs.push("tc(8)");
        }
        out.push((
            format!("man/{name}.1"),
            page(sub.clone(), name, synopsis(&cmd, Some(sub)), &refs),
        ));
    }
    out
}

#[test]
fn completions_and_man_page_match_the_cli() {
    let root = root();
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

/// The text of section `name` of a roff page, with fonts and escapes removed; italic words
/// (placeholders) are wrapped in `<>`.
fn section(roff: &str, name: &str) -> String {
    let start = roff
        .find(&format!(".SH {name}\n"))
        .unwrap_or_else(|| panic!("no {name} section in\n{roff}"));
    let body = &roff[start..].lines().skip(1).collect::<Vec<_>>().join("\n");
    let end = body.find("\n.SH ").unwrap_or(body.len());
    let body: String = body[..end]
        .lines()
        .filter(|l| !l.starts_with('.') || l.starts_with(".."))
        .collect::<Vec<_>>()
        .join("\n");
    body.replace("\\fI<", "\\fI")
        .replace("\\fI", "<")
        .replace("\\fB", "")
        .replace("\\fR", "\u{1}")
        .replace("\\-", "-")
        .split('\u{1}')
        .map(|part| {
            // Close a placeholder opened in this part (clap_mangen writes its own `<>`).
            if part.contains('<') && !part.ends_with('>') {
                format!("{part}>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// A synopsis as alternatives to try: the minimal command (optional parts dropped, first
/// alternative of each group) and that command plus each optional part alone.
fn commands_of(synopsis: &str, policy: &Path) -> Vec<Vec<String>> {
    let fill = |w: &str| -> String {
        match w.trim_matches(|c| c == '<' || c == '>' || c == '.') {
            "POLICY" => policy.display().to_string(),
            "TIME" => "1s".into(),
            "N" => "2".into(),
            "ADDR" => "127.0.0.1:9".into(),
            "PATH" => "/usr/sbin/tc".into(),
            other => other.to_lowercase(),
        }
    };
    let words = |s: &str| -> Vec<String> {
        // `-q|--quiet` is one option in two spellings: take the long one.
        s.split_whitespace()
            .map(|w| w.rsplit('|').next().unwrap())
            .map(|w| {
                if w.starts_with('<') {
                    fill(w)
                } else {
                    w.to_string()
                }
            })
            .collect()
    };
    // Split into top-level parts: plain words, [optional], (a | b).
    let mut parts: Vec<(char, String)> = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut kind = ' ';
    for c in synopsis.chars() {
        match c {
            '[' | '(' if depth == 0 => {
                if !cur.trim().is_empty() {
                    parts.push((' ', std::mem::take(&mut cur)));
                }
                cur.clear();
                kind = c;
                depth += 1;
            }
            ']' | ')' if depth == 1 => {
                parts.push((kind, std::mem::take(&mut cur)));
                depth -= 1;
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        parts.push((' ', cur));
    }
    let base = |with: Option<usize>| -> Vec<String> {
        let mut v = Vec::new();
        for (i, (k, text)) in parts.iter().enumerate() {
            match k {
                ' ' => v.extend(words(text)),
                '(' => v.extend(words(text.split(" | ").next().unwrap())),
                '[' if with == Some(i) => v.extend(words(text)),
                _ => {}
            }
        }
        v
    };
    let mut all = vec![base(None)];
    for (i, (k, _)) in parts.iter().enumerate() {
        if *k == '[' {
            all.push(base(Some(i)));
        }
    }
    all
}

#[test]
fn every_synopsis_is_a_command_one_can_run() {
    let policy = root().join("examples/home-router.toml");
    let mut pages = 0;
    for entry in std::fs::read_dir(root().join("man")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("1") {
            continue;
        }
        pages += 1;
        let roff = std::fs::read_to_string(&path).unwrap();
        let syn = section(&roff, "SYNOPSIS");
        let syn = syn.trim();
        assert!(syn.starts_with("qosctl "), "{}: {syn}", path.display());
        for argv in commands_of(syn, &policy) {
            // The top page's `COMMAND [ARGS]` is filled with a real one.
            let argv: Vec<String> = argv
                .into_iter()
                .map(|w| if w == "command" { "show".into() } else { w })
                .filter(|w| w != "args")
                .collect();
            if let Err(e) = qosctl::cli::Cli::try_parse_from_argv(&argv) {
                panic!(
                    "{}: `{}` does not parse: {e}",
                    path.display(),
                    argv.join(" ")
                );
            }
        }
    }
    assert!(pages >= 7, "only {pages} pages in man/");
}

trait TryParse {
    fn try_parse_from_argv(argv: &[String]) -> Result<qosctl::cli::Cli, clap::Error>;
}

impl TryParse for qosctl::cli::Cli {
    fn try_parse_from_argv(argv: &[String]) -> Result<qosctl::cli::Cli, clap::Error> {
        <qosctl::cli::Cli as clap::Parser>::try_parse_from(argv)
    }
}

#[test]
fn subcommand_pages_list_the_global_options_and_reset_says_what_it_needs() {
    let man = root().join("man");
    for sub in ["apply", "show", "reset", "top", "metrics"] {
        let roff = std::fs::read_to_string(man.join(format!("qosctl-{sub}.1"))).unwrap();
        let opts = section(&roff, "OPTIONS");
        assert!(
            opts.contains("--netns <NAME>") && opts.contains("--tc <PATH>"),
            "qosctl-{sub}.1 lists the global options:\n{opts}"
        );
    }
    let check = std::fs::read_to_string(man.join("qosctl-check.1")).unwrap();
    assert!(
        !check.contains("netns"),
        "check ignores --netns: not on its page"
    );
    let reset = std::fs::read_to_string(man.join("qosctl-reset.1")).unwrap();
    let syn = section(&reset, "SYNOPSIS");
    assert!(syn.contains("(<POLICY> | --dev <DEV>...)"), "{syn}");
    assert!(
        section(&reset, "DESCRIPTION").contains("one of the two is required"),
        "{reset}"
    );
}

#[test]
fn check_help_offers_no_option_check_ignores() {
    let out = std::process::Command::new(QOSCTL)
        .args(["check", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        !help.contains("--netns") && !help.contains("--tc"),
        "{help}"
    );
    // Still accepted in either place, as scripts pass them to every command.
    let policy = root().join("examples/home-router.toml");
    for args in [
        vec!["--netns", "x", "check", "-q"],
        vec!["check", "--netns", "x", "--tc", "/nonexistent", "-q"],
    ] {
        let st = std::process::Command::new(QOSCTL)
            .args(&args)
            .arg(&policy)
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    }
}

#[test]
fn every_referenced_page_exists() {
    let man = root().join("man");
    let mut refs = 0;
    for entry in std::fs::read_dir(&man).unwrap() {
        let path = entry.unwrap().path();
        let roff = std::fs::read_to_string(&path).unwrap();
        let text = roff
            .replace("\\-", "-")
            .replace("\\fR", "")
            .replace("\\fB", "");
        // `name(N)` and `.BR name (N)`.
        let re_like = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .collect::<Vec<_>>();
        for (i, w) in re_like.iter().enumerate() {
            let (name, sec) = if let Some((n, s)) = w.split_once('(') {
                (n.to_string(), s.trim_end_matches(|c| c != ')'))
            } else if let Some(next) = re_like.get(i + 1).filter(|n| n.starts_with('(')) {
                (w.to_string(), next.strip_prefix('(').unwrap())
            } else {
                continue;
            };
            let Some(sec) = sec.strip_suffix(')').filter(|s| s.len() == 1) else {
                continue;
            };
            if !sec.chars().all(|c| c.is_ascii_digit())
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-._".contains(c))
                || name.is_empty()
            {
                continue;
            }
            refs += 1;
            let ours = man.join(format!("{name}.{sec}")).exists();
            let system = std::process::Command::new(common::require("man"))
                .args(["-w", sec, &name])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                ours || system,
                "{} refers to {name}({sec}), which is neither in man/ nor installed",
                path.display()
            );
        }
    }
    assert!(refs > 10, "only {refs} references found");
}

#[test]
fn the_policy_page_covers_every_key_and_its_examples_pass_check() {
    let page = std::fs::read_to_string(root().join("man/qosctl.toml.5")).unwrap();
    let r = std::process::Command::new(common::require("groff"))
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(root().join("man/qosctl.toml.5"))
        .output()
        .expect("groff runs");
    assert!(
        r.status.success() && r.stderr.is_empty(),
        "groff warns: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(page.contains(".TH QOSCTL.TOML 5"));
    // Every key of the reference's key tables (`| \`key\` |` rows) is on the page.
    let doc = std::fs::read_to_string(root().join("docs/policy.md")).unwrap();
    let plain = page
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\-", "-");
    let mut keys = 0;
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap();
        for key in first.split('`').skip(1).step_by(2) {
            if key.starts_with('"') || key.contains(' ') {
                continue; // a value in the units table, not a key
            }
            keys += 1;
            assert!(
                plain.contains(key),
                "key {key} of docs/policy.md is not on the page"
            );
        }
    }
    assert!(keys > 30, "only {keys} keys read from docs/policy.md");
    // Every TOML example between .nf/.fi that starts with a table passes `qosctl check`.
    let examples = section(&page, "EXAMPLES");
    let mut checked = 0;
    let dir = tempfile::tempdir().unwrap();
    for block in page.split(".nf\n").skip(1) {
        let body = block.split("\n.fi").next().unwrap().replace("\\-", "-");
        if !body.starts_with("[interfaces.") {
            continue;
        }
        checked += 1;
        let f = dir.path().join(format!("example{checked}.toml"));
        std::fs::write(&f, &body).unwrap();
        let out = std::process::Command::new(QOSCTL)
            .args(["check", "-q"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "example {checked} fails check:\n{body}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        checked >= 2 && examples.contains("qosctl check"),
        "{examples}"
    );
}

/// Runs bash's completion function for `words` (the last one is being completed) with
/// `path_dir` first on PATH; returns COMPREPLY.
fn complete(words: &[&str], path_dir: &Path) -> Vec<String> {
    let reg = root().join("completions/qosctl.bash");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source '{}'\n\
         complete -p qosctl >&2 || exit 9\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n\
         _clap_complete_qosctl qosctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        reg.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let bin_dir = Path::new(QOSCTL).parent().unwrap();
    let path = format!(
        "{}:{}:{}",
        path_dir.display(),
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &script])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn bash_completion_offers_namespaces_and_devices() {
    // A fake `ip`: two namespaces, and different devices inside `blue` than outside, so
    // the test needs no real namespace and shows the device list follows --netns.
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("ip");
    std::fs::write(
        &ip,
        "#!/bin/sh\ncase \"$*\" in\n\
         'netns list') printf 'blue (id: 0)\\nred\\n' ;;\n\
         '-o link show') printf '1: lo: <LOOPBACK> mtu 65536\\n2: eth7: <UP> mtu 1500\\n' ;;\n\
         '-n blue -o link show') printf '1: lo: <LOOPBACK> mtu 65536\\n5: a0@if4: <UP> mtu 1500\\n' ;;\n\
         *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&ip)
        .status()
        .unwrap();
    let d = dir.path();
    let ns = complete(&["qosctl", "--netns", ""], d);
    assert!(
        ns.contains(&"blue".into()) && ns.contains(&"red".into()),
        "{ns:?}"
    );
    let ns = complete(&["qosctl", "show", "--netns", "r"], d);
    assert_eq!(ns, ["red"]);
    let devs = complete(&["qosctl", "show", ""], d);
    assert!(
        devs.contains(&"eth7".into()) && !devs.contains(&"a0".into()),
        "{devs:?}"
    );
    let devs = complete(&["qosctl", "--netns", "blue", "show", ""], d);
    assert!(
        devs.contains(&"a0".into()) && !devs.contains(&"eth7".into()),
        "{devs:?}"
    );
    let devs = complete(&["qosctl", "reset", "--dev", "e"], d);
    assert_eq!(devs, ["eth7"]);
    let subs = complete(&["qosctl", "t"], d);
    assert_eq!(subs, ["top"]);
}
