//! The multicall binary against the steps' own binaries: for every step of the contract's list,
//! `ecskit STEP ...` and a link named `STEP` print what `STEP ...` prints (help, version, a bad
//! input's error and exit code) and write the same completions and man page; `ecskit --help`
//! lists the steps; an unknown step is exit 2 naming the known ones.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ecskit_contract::Step;

const ECSKIT: &str = env!("CARGO_BIN_EXE_ecskit");

/// A step's own binary, built beside this one (`cargo xtask ci` builds every binary before the
/// tests run; alone: `cargo build -p STEP`).
fn own_binary(step: Step) -> PathBuf {
    let path = Path::new(ECSKIT).with_file_name(step.binary());
    assert!(
        path.exists(),
        "{} is missing: cargo build -p {}",
        path.display(),
        step.binary()
    );
    path
}

/// A directory with a link named after every step, pointing at `ecskit`.
fn links() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for step in Step::ALL {
        std::os::unix::fs::symlink(ECSKIT, dir.path().join(step.binary())).unwrap();
    }
    dir
}

/// A step's three forms: its own binary, `ecskit STEP`, the link named after it.
fn forms(step: Step, links: &Path) -> [Command; 3] {
    let mut multicall = Command::new(ECSKIT);
    multicall.arg(step.binary());
    let mut forms = [
        Command::new(own_binary(step)),
        multicall,
        Command::new(links.join(step.binary())),
    ];
    for f in &mut forms {
        f.env_remove("ECSKIT_GENERATE_DOCS");
    }
    forms
}

/// The same command line through the three forms.
fn three_ways(step: Step, links: &Path, args: &[&OsStr]) -> [Output; 3] {
    forms(step, links).map(|mut cmd| cmd.args(args).output().unwrap())
}

fn assert_same(step: Step, what: &str, outs: &[Output; 3]) {
    for (form, out) in ["ecskit STEP", "the link"].iter().zip(&outs[1..]) {
        assert_eq!(
            (out.status.code(), &out.stdout, &out.stderr),
            (outs[0].status.code(), &outs[0].stdout, &outs[0].stderr),
            "{step} {what}: {form} differs from the step's own binary:\n{}\n---\n{}",
            String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&outs[0].stdout) + String::from_utf8_lossy(&outs[0].stderr),
        );
    }
}

#[test]
fn every_step_helps_and_refuses_bad_input_as_its_own_binary() {
    let links = links();
    for step in Step::ALL {
        for args in [
            &["--help"][..],
            &["-h"],
            &["--version"],
            &["--no-such-flag"],
        ] {
            let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            let outs = three_ways(step, links.path(), &args);
            assert_same(step, &format!("{args:?}"), &outs);
        }
        let help = String::from_utf8_lossy(
            &three_ways(step, links.path(), &[OsStr::new("--help")])[1].stdout,
        )
        .to_string();
        assert!(
            help.contains(&format!("Usage: {}", step.binary())),
            "{step}: {help}"
        );
    }
    // A bad input found by the step's check (exit 2, nothing called): the arguments reach it.
    let outs = three_ways(
        Step::TaskdefRegister,
        links.path(),
        &[
            OsStr::new("--file"),
            OsStr::new("/nonexistent/taskdef.json"),
        ],
    );
    assert_eq!(
        outs[0].status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&outs[0].stderr)
    );
    assert_same(Step::TaskdefRegister, "--file /nonexistent", &outs);
}

#[test]
fn every_step_writes_the_same_completions_and_man_page() {
    let links = links();
    for step in Step::ALL {
        let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
        let outs: Vec<Output> = forms(step, links.path())
            .into_iter()
            .zip(&dirs)
            .map(|(mut cmd, d)| cmd.env("ECSKIT_GENERATE_DOCS", d.path()).output().unwrap())
            .collect();
        for out in &outs {
            assert!(
                out.status.success(),
                "{step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let files = |d: &Path| {
            let mut all = Vec::new();
            for sub in ["completions", "man"] {
                for e in std::fs::read_dir(d.join(sub)).unwrap() {
                    let p = e.unwrap().path();
                    all.push((
                        p.strip_prefix(d).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    ));
                }
            }
            all.sort();
            all
        };
        let own = files(dirs[0].path());
        assert_eq!(own.len(), 4, "{step}: bash, zsh, fish and the man page");
        assert_eq!(files(dirs[1].path()), own, "{step}: ecskit STEP");
        assert_eq!(files(dirs[2].path()), own, "{step}: the link");
    }
}

fn ecskit(args: &[&OsStr]) -> Output {
    Command::new(ECSKIT).args(args).output().unwrap()
}

#[test]
fn ecskit_help_lists_every_step_with_its_description() {
    let out = ecskit(&[OsStr::new("--help")]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for step in Step::ALL {
        let own = Command::new(own_binary(step))
            .arg("--help")
            .output()
            .unwrap();
        // The description is the own help's first paragraph (clap wraps it at the width).
        let own = String::from_utf8(own.stdout).unwrap();
        let about = own
            .split("\n\n")
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(step.binary()) && l.ends_with(&about)),
            "{step} ({about}) is not listed:\n{help}"
        );
    }
}

#[test]
fn an_unknown_or_missing_step_is_exit_2_naming_the_known_ones() {
    let known = Step::ALL.map(|s| s.binary()).join(", ");
    let invalid_utf8 = {
        use std::os::unix::ffi::OsStrExt;
        OsStr::from_bytes(b"role-\xffcreate").to_os_string()
    };
    for args in [
        vec![OsStr::new("role_create")],
        vec![OsStr::new("--dry-run"), OsStr::new("role-create")],
        vec![invalid_utf8.as_os_str()],
    ] {
        let out = ecskit(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(
            err.contains(&format!("is not a step: one of {known}")),
            "{args:?}: {err}"
        );
    }
    let none = ecskit(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("Usage: ecskit <STEP>"));
}

#[test]
fn a_link_under_another_name_is_the_first_argument_form() {
    // A renamed copy (or a link named after no step) does not run a step by its name.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("ecskit-0.1");
    std::os::unix::fs::symlink(ECSKIT, &renamed).unwrap();
    let out = Command::new(&renamed)
        .args(["role-create", "--version"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let own = Command::new(own_binary(Step::RoleCreate))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.stdout, own.stdout);
}
