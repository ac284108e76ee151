//! `cargo xtask bench`: wall time and AWS API calls of deploys against the local stack, with
//! release binaries. Three deploys of one service, each beside the same work done the way the
//! seed documents do it, one `aws` CLI call per step, in the same run:
//!
//! - (a) a first deploy, leaving out the image upload and the waiting (both are timed apart:
//!   the upload is Docker's work on either side, and the waiting is ECS's);
//! - (b) a re-deploy with nothing changed;
//! - (c) a re-deploy after a new image (upload included on both sides).
//!
//! The ecskit side runs the chain exactly as `cargo xtask deploy` does (prebuilt binaries as
//! processes, stage 0 concurrent) and counts calls from the binaries' call logs. The CLI side
//! runs the aws CLI from the stack's venv with `--endpoint-url`; each call is one API operation
//! (an `s3 cp` of N files is N PutObject calls). Both sides use their own names, with a suffix
//! unique to the run, so they never see each other's resources.
//!
//! Then [`sizes`]: stacks of 1, 5 and 20 services, first deploy and no-change re-deploy, as a
//! table and a plot (docs/bench-services.svg).

use std::collections::BTreeMap;

use std::process::ExitCode;
use std::time::{Duration, Instant};

mod aws_cli;
mod sizes;

use aws_cli::Cli;

use crate::chain::{self, Calls, Runner, Step, StepResult};
use crate::demo;
use crate::local;
use crate::stack::Stacks;
use crate::util::{self, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep what the benchmark created (default: the ecskit side is destroyed at the end).
    #[arg(long)]
    pub keep: bool,
    /// Measure without verify (deploy's `--no-verify`); by default the deploys run it, as
    /// `cargo xtask deploy` does, so its reads count toward every figure.
    #[arg(long)]
    pub no_verify: bool,
}

/// One measured run of one side.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measure {
    pub time: Duration,
    pub calls: Calls,
}

/// The figures of one case: ecskit beside the CLI way.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub case: &'static str,
    pub ecskit: Measure,
    pub cli: Measure,
}

impl Row {
    /// How many times faster ecskit was.
    pub fn speedup(&self) -> f64 {
        let e = self.ecskit.time.as_secs_f64();
        if e <= 0.0 {
            return f64::INFINITY;
        }
        self.cli.time.as_secs_f64() / e
    }
}

/// A measure as the tables show it: `0.12 s`, and `14 (3)` calls (mutating).
impl Measure {
    fn cells(&self) -> [String; 2] {
        [
            format!("{:.2} s", self.time.as_secs_f64()),
            format!("{} ({})", self.calls.total, self.calls.mutating),
        ]
    }
}

/// A Markdown table: the first column left-aligned, the others right-aligned.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|---|", header.join(" | "));
    out.push_str(&"---:|".repeat(header.len().saturating_sub(1)));
    out.push('\n');
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

/// The table for README, in Markdown, with the targets checked below it.
pub fn render(rows: &[Row]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.case.to_string()];
            cells.extend(r.ecskit.cells());
            cells.extend(r.cli.cells());
            cells.push(format!("{:.1}x", r.speedup()));
            cells
        })
        .collect();
    markdown(
        &[
            "case",
            "ecskit time",
            "ecskit calls (mutating)",
            "aws CLI time",
            "aws CLI calls (mutating)",
            "ecskit speed-up",
        ],
        &rows,
    )
}

/// Case (a) beside the emulator's floor: the CLI script's calls made from one warm process
/// (`floor.py`), the least time the emulator takes for that work.
pub fn render_floor(first: &Row, floor: &Measure) -> String {
    let mut cells = vec![first.case.to_string()];
    cells.extend(first.ecskit.cells());
    cells.extend(floor.cells());
    cells.push(format!("{:.1}x", ratio(first.ecskit, *floor)));
    cells.push(format!("{:.1}x", first.speedup()));
    markdown(
        &[
            "case",
            "ecskit time",
            "ecskit calls (mutating)",
            "emulator floor",
            "floor calls (mutating)",
            "ecskit / floor",
            "aws CLI / ecskit",
        ],
        &[cells],
    )
}

/// How many times the floor's time `a` took.
fn ratio(a: Measure, floor: Measure) -> f64 {
    let f = floor.time.as_secs_f64();
    if f <= 0.0 {
        return f64::INFINITY;
    }
    a.time.as_secs_f64() / f
}

/// The target: the first deploy within 1.5 times the emulator's floor.
pub fn floor_target(first: &Row, floor: &Measure) -> (String, bool) {
    let r = ratio(first.ecskit, *floor);
    (
        format!("first deploy within 1.5x the emulator's floor ({r:.1}x)"),
        r <= 1.5,
    )
}

/// The targets: (b) zero mutating calls and under 0.5 s; (a) at least 50x the CLI way.
pub fn targets(first: &Row, no_change: &Row) -> Vec<(String, bool)> {
    vec![
        (
            format!(
                "no-change re-deploy makes zero mutating calls ({})",
                no_change.ecskit.calls.mutating
            ),
            no_change.ecskit.calls.mutating == 0,
        ),
        (
            format!(
                "no-change re-deploy under 0.5 s ({:.3} s)",
                no_change.ecskit.time.as_secs_f64()
            ),
            no_change.ecskit.time < Duration::from_millis(500),
        ),
        (
            format!(
                "first deploy at least 50x faster than the CLI way ({:.1}x)",
                first.speedup()
            ),
            first.speedup() >= 50.0,
        ),
    ]
}

pub fn main(args: Args) -> ExitCode {
    match bench(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("xtask bench: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn bench(args: &Args) -> Result<bool> {
    let (state, _) = local::up()?;
    let run_id = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(0)
    );
    let dir = std::env::temp_dir().join(format!("ecskit-bench-{run_id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let examples = util::workspace_root().join("examples");

    // Both sides deploy the example stack, under their own names.
    let ecskit_app = format!("bench-ecskit-{run_id}");
    let cli_app = format!("bench-cli-{run_id}");
    let image = format!("ecskit-bench:{run_id}");
    let stack_path = dir.join("ecskit.toml");
    std::fs::write(
        &stack_path,
        format!(
            r#"[app]
name = "{ecskit_app}"
region = "{region}"
[image]
source = "{image}"
tags = ["{run_id}"]
[roles]
bucket = "{ecskit_app}"
prefix = "config"
[config]
files = ["{config}"]
[task_definition]
file = "{taskdef}"
family = "{ecskit_app}"
[service]
count = 1
wait = false
"#,
            region = local::REGION,
            config = examples.join("config").display(),
            taskdef = dir.join("taskdef.json").display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let taskdef = std::fs::read_to_string(examples.join("taskdef.json"))
        .map_err(|e| e.to_string())?
        .replace(
            "\"family\": \"ecskit-demo\"",
            "\"family\": \"${BENCH_FAMILY}\"",
        );
    std::fs::write(dir.join("taskdef.json"), &taskdef).map_err(|e| e.to_string())?;
    let stacks = chain::load_stack(&stack_path).map_err(|(e, _)| e)?;

    eprintln!("bench: building the image and the binaries");
    demo::build_image(&state, &image, "1\n")?;
    let steps = chain::stack_steps(&stacks.services[0]);
    // Release binaries, as users get them (all eight in one build, so the SDK is built once).
    let bin_dir = match std::env::var_os("ECSKIT_BIN_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            chain::build(&Step::ALL, &[], true)?;
            chain::target_dir().join("release")
        }
    };
    let mut runner = Runner::at(bin_dir, &stacks.region, false)?;
    demo::local_runner(&mut runner, &state);
    runner.quiet = true;
    runner.verify = !args.no_verify;
    runner
        .base_env
        .push(("BENCH_FAMILY".into(), ecskit_app.clone()));
    let cli = Cli::new(&state, &cli_app, &dir, &examples)?;

    // moto answers its first EC2 call slowly (2.5 s): warm both clients up outside the clock.
    cli.call("ec2", &["describe-vpcs"], "DescribeVpcs")?;
    cli.call("sts", &["get-caller-identity"], "GetCallerIdentity")?;

    // Image upload, apart: ecskit's image-push beside aws ecr get-login-password + docker push.
    eprintln!("bench: image upload");
    let mut env = BTreeMap::new();
    let push = chain(&runner, &stacks, &[Step::ImagePush], &mut env)?;
    let cli_repo = cli.create_repository()?;
    let cli_push = cli.push(&image, &cli_repo)?;

    eprintln!("bench: (a) first deploy");
    let rest: Vec<Step> = steps
        .iter()
        .copied()
        .filter(|s| *s != Step::ImagePush)
        .collect();
    let first = chain(&runner, &stacks, &rest, &mut env)?;
    let cli_first = cli.first_deploy(&cli_push.1)?;
    let floor = cli.floor(&format!("bench-floor-{run_id}"), &cli_push.1)?;

    eprintln!("bench: (b) no-change re-deploy");
    let mut env_b = BTreeMap::new();
    let no_change = chain(&runner, &stacks, &steps, &mut env_b)?;
    let cli_no_change = cli.redeploy(&cli_push.1)?;

    eprintln!("bench: (c) re-deploy after a new image");
    demo::build_image(&state, &image, "2\n")?;
    let mut env_c = BTreeMap::new();
    let new_image = chain(&runner, &stacks, &steps, &mut env_c)?;
    let cli_new_image = {
        let start = Instant::now();
        let (m, uri) = cli.push(&image, &cli_repo)?;
        let td = cli.register_task_definition(&uri)?;
        let up = cli.update_service(&td.0)?;
        Measure {
            time: start.elapsed(),
            calls: m.calls + td.1 + up,
        }
    };

    let rows = vec![
        Row {
            case: "image upload (apart)",
            ecskit: push,
            cli: cli_push.0,
        },
        Row {
            case: "(a) first deploy, without image upload and waiting",
            ecskit: first,
            cli: cli_first,
        },
        Row {
            case: "(b) re-deploy, nothing changed",
            ecskit: no_change,
            cli: cli_no_change,
        },
        Row {
            case: "(c) re-deploy after a new image",
            ecskit: new_image,
            cli: cli_new_image,
        },
    ];
    println!("{}", render(&rows));
    println!("{}", render_floor(&rows[1], &floor));
    let mut checks = targets(&rows[1], &rows[2]);
    checks.push(floor_target(&rows[1], &floor));

    let sizes = sizes::measure(&runner, &state, &dir, &run_id)?;
    println!("{}", sizes::render(&sizes));
    checks.extend(sizes::targets(&sizes));
    let machine = machine();
    let svg = util::workspace_root().join("docs/bench-services.svg");
    std::fs::write(&svg, sizes::plot(&sizes, &machine))
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    println!("plot: {} ({machine})", svg.display());
    for (what, ok) in &checks {
        println!("{} {what}", if *ok { "[met]   " } else { "[MISSED]" });
    }
    println!(
        "\nmeasured on the local stack (moto {}): the aws CLI way is one process per call (~0.7 s of start-up each); \
         the re-deploy the CLI way re-applies each step (a script cannot tell what changed).",
        local::MOTO_VERSION
    );
    if !args.keep {
        eprintln!("bench: removing the ecskit side");
        let code = crate::destroy::destroy(
            &stacks,
            false,
            chain::Format::Json,
            chain::DEFAULT_JOBS,
            Some((&state, &runner.bin_dir)),
        );
        if code != ExitCode::SUCCESS {
            eprintln!("bench: warning: destroy failed; the local stack keeps the bench resources");
        } else {
            // The stack file and images' work files: kept with --keep, for a later destroy.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    Ok(checks.iter().all(|(_, ok)| *ok))
}

/// The machine the figures come from, for the README and the plot.
fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!(
        "{cores} cores ({model}), moto {}, release binaries",
        local::MOTO_VERSION
    )
}

/// Runs steps as the deploy does and measures them; a failing step fails the benchmark. `env`
/// gives the steps the outputs of those run before, and gains theirs.
fn chain(
    runner: &Runner,
    stacks: &Stacks,
    steps: &[Step],
    env: &mut BTreeMap<String, String>,
) -> Result<Measure> {
    let sel = chain::Selection {
        steps: steps.to_vec(),
        services: Vec::new(),
    };
    let units = chain::plan::deploy(stacks, &sel);
    let base = vec![env.clone(); stacks.services.len()];
    let start = Instant::now();
    let results = chain::run_chain(runner, stacks, &units, &base, chain::DEFAULT_JOBS);
    let time = start.elapsed();
    if let Some(r) = results.iter().flatten().find(|r| r.code != 0) {
        return Err(failure(r));
    }
    let ran: Vec<&StepResult> = results.iter().flatten().collect();
    for r in &ran {
        env.extend(r.outputs.iter().cloned());
    }
    Ok(Measure {
        time,
        calls: ran.iter().fold(Calls::default(), |a, r| a + r.calls),
    })
}

fn failure(r: &StepResult) -> String {
    format!(
        "{} failed (exit {}):\n{}",
        r.step.binary(),
        r.code,
        r.error.clone().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ms: u64, total: usize, mutating: usize) -> Measure {
        Measure {
            time: Duration::from_millis(ms),
            calls: Calls { total, mutating },
        }
    }

    #[test]
    fn the_table_shows_both_sides_and_the_ratio() {
        let rows = [Row {
            case: "(b) re-deploy, nothing changed",
            ecskit: m(250, 14, 0),
            cli: m(5000, 9, 9),
        }];
        let table = render(&rows);
        let last = table.lines().last().unwrap();
        assert_eq!(
            last,
            "| (b) re-deploy, nothing changed | 0.25 s | 14 (0) | 5.00 s | 9 (9) | 20.0x |"
        );
    }

    #[test]
    fn targets_are_checked() {
        let first = Row {
            case: "a",
            ecskit: m(500, 20, 12),
            cli: m(9000, 15, 13),
        };
        let no_change = Row {
            case: "b",
            ecskit: m(300, 14, 0),
            cli: m(5000, 9, 9),
        };
        let checks = targets(&first, &no_change);
        assert_eq!(
            checks.iter().map(|(_, ok)| *ok).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert!(checks[2].0.contains("18.0x"), "{}", checks[2].0);
        assert!(checks[2].0.contains("50x"), "{}", checks[2].0);
    }

    #[test]
    fn the_floor_row_shows_both_ratios_and_its_target() {
        let first = Row {
            case: "(a)",
            ecskit: m(600, 44, 13),
            cli: m(9000, 15, 13),
        };
        let floor = m(200, 15, 13);
        let table = render_floor(&first, &floor);
        assert!(
            table.ends_with("| (a) | 0.60 s | 44 (13) | 0.20 s | 15 (13) | 3.0x | 15.0x |\n"),
            "{table}"
        );
        assert!(!floor_target(&first, &floor).1);
        assert!(floor_target(&first, &m(400, 15, 13)).1);
    }
}
