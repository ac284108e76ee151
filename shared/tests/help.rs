//! Each binary's `--help` (the long help; `-h` is its summary), pinned: the flags, what each reads from the environment, and the
//! examples it ends with (the seeds' Snaplex, chained with `--output env`). A change to a flag or
//! an example shows up here as a diff to review (`cargo insta review`).
//!
//! Rendered at 100 columns, what clap uses when stdout is not a terminal. Values in the
//! environment are never shown (`ecskit::cli::command`), so the test's environment (the local
//! stack's AWS_ENDPOINT_URL, say) does not leak into the snapshot; that is checked too.

use ecskit::cli::command;

fn help<A: clap::CommandFactory>() -> String {
    command::<A>()
        .term_width(100)
        .render_long_help()
        .to_string()
}

#[test]
fn each_help_is_pinned_and_shows_no_environment_value() {
    let helps = [
        ("image-push", help::<ecskit::image_push::Args>()),
        ("role-create", help::<ecskit::role_create::Args>()),
        ("instance-profile", help::<ecskit::instance_profile::Args>()),
        ("capacity-create", help::<ecskit::capacity_create::Args>()),
        ("config-upload", help::<ecskit::config_upload::Args>()),
        ("taskdef-register", help::<ecskit::taskdef_register::Args>()),
        ("service-run", help::<ecskit::service_run::Args>()),
        ("task-run", help::<ecskit::task_run::Args>()),
    ];
    for (name, text) in &helps {
        insta::assert_snapshot!(format!("help_{name}"), text);
        for line in text.lines() {
            if let Some(env) = line.trim().strip_prefix("[env: ") {
                assert!(
                    env.ends_with(']') && !env.contains('='),
                    "{name}: an environment value in its help: {line}"
                );
            }
        }
        // The examples are whole command lines: none is wrapped at 100 columns.
        let examples = text
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: its help has no examples"));
        for line in examples.lines().take_while(|l| !l.is_empty()) {
            assert!(
                ["  eval ", "  aws ", &format!("  {name}")]
                    .iter()
                    .any(|start| line.starts_with(start)),
                "{name}: an example wrapped or not a command: {line}"
            );
        }
    }
}

/// task-run's summary (`-h`) fits one screen of a 100-column terminal before its examples: 66
/// lines, of which the Output and AWS flags every binary shares take 24; its own flags are the
/// task's only, one line each (the rarer ones are in `--help`).
#[test]
fn task_run_summary_fits_one_screen() {
    let text = command::<ecskit::task_run::Args>()
        .term_width(100)
        .render_help()
        .to_string();
    insta::assert_snapshot!("summary_task-run", text);
    let before_examples = text.split("Examples:").next().unwrap();
    let lines: Vec<&str> = before_examples.lines().collect();
    assert!(
        lines.len() <= 66,
        "task-run -h is {} lines before its examples:\n{text}",
        lines.len()
    );
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line}"
        );
    }
}

/// service-run has no flag that only a one-off task uses: those are task-run's.
#[test]
fn service_run_has_no_task_only_flag() {
    let text = help::<ecskit::service_run::Args>();
    for flag in [
        "--run-task",
        "--local",
        "--command",
        "--env ",
        "--task-role-arn",
        "--pause-image",
        "--count",
        "--stop",
    ] {
        // The whole flag: service-run's --stop-deployment is not task-run's --stop.
        let shown = text.match_indices(flag).any(|(at, _)| {
            !text[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        });
        assert!(!shown, "service-run --help shows {flag}");
    }
}
