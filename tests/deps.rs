//! tests/install-deps.sh installs every program the tests ask for: each program named in a
//! `require("…")` or `require_all(&[…])` of tests/*.rs, and each one bench/run.sh refuses to
//! run without, has a `need PROGRAM PACKAGE` line there. A test that starts to run a new
//! program therefore cannot pass here while a fresh machine would lack it.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The string literals inside `require(…)` and `require_all(&[…])` calls.
fn required_in(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in src.match_indices("require") {
        let rest = &src[at..];
        let Some(args) = rest
            .strip_prefix("require_all(")
            .or_else(|| rest.strip_prefix("require("))
        else {
            continue;
        };
        let args = &args[..args.find(')').unwrap_or(args.len())];
        found.extend(args.split('"').skip(1).step_by(2).map(String::from));
    }
    found
}

fn needed() -> BTreeSet<String> {
    let deps = std::fs::read_to_string(root().join("tests/install-deps.sh")).unwrap();
    deps.lines()
        .filter_map(|l| l.strip_prefix("need "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn every_required_program_is_installed_by_install_deps() {
    let need = needed();
    assert!(need.contains("ping") && need.contains("tc"), "{need:?}");
    let mut required = BTreeSet::new();
    for e in std::fs::read_dir(root().join("tests")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "rs") && p.file_name() != Some("deps.rs".as_ref()) {
            let src = std::fs::read_to_string(&p).unwrap();
            for prog in required_in(&src) {
                required.insert((prog, p.file_name().unwrap().to_string_lossy().into_owned()));
            }
        }
    }
    // The programs bench/run.sh dies without (`command -v X || die`, `[ -x X ] || die`),
    // also those of its options (--verify-fireqos's strace): someone following
    // BENCHMARKS.md on a machine set up by install-deps.sh must not lack them either.
    let bench = std::fs::read_to_string(root().join("bench/run.sh")).unwrap();
    for l in bench.lines().filter(|l| l.contains("|| die")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        let prog = match words.as_slice() {
            ["command", "-v", p, ..] => Some(*p),
            ["[", "-x", p, ..] => Some(*p),
            _ => None,
        };
        if let Some(p) = prog.filter(|p| !p.starts_with("\"$")) {
            required.insert((p.to_string(), "bench/run.sh".into()));
        }
    }
    assert!(required.iter().any(|(p, _)| p == "ping"), "{required:?}");
    // bash and sh are essential on Debian: they are never missing.
    let missing: Vec<_> = required
        .iter()
        .filter(|(p, _)| !need.contains(p) && p != "bash" && p != "sh")
        .collect();
    assert!(
        missing.is_empty(),
        "required by a test but not installed by tests/install-deps.sh: {missing:?}"
    );
}

/// tests/ansible.rs runs ansible-playbook and ansible-doc from the test venv
/// (`bin.join("…")`), not from PATH: install-deps.sh must make and check exactly those.
#[test]
fn the_venv_programs_the_ansible_test_runs_are_installed_by_install_deps() {
    let deps = std::fs::read_to_string(root().join("tests/install-deps.sh")).unwrap();
    let test = std::fs::read_to_string(root().join("tests/ansible.rs")).unwrap();
    let progs: BTreeSet<&str> = test
        .match_indices("bin.join(\"")
        .filter_map(|(at, m)| test[at + m.len()..].split('"').next())
        .collect();
    assert!(progs.contains("ansible-playbook"), "{progs:?}");
    for p in progs {
        assert!(
            deps.contains(&format!("[ -x \"$venv/bin/{p}\" ]")),
            "tests/ansible.rs runs {p} from the venv, but tests/install-deps.sh does not check \
             that it installed it"
        );
    }
}

#[test]
fn the_parser_of_this_test_finds_both_forms() {
    let src = r#"common::require("ss"); common::require_all(&["ip", "/usr/bin/time"]);"#;
    assert_eq!(required_in(src), ["ss", "ip", "/usr/bin/time"]);
}
