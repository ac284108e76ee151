//! How the cost grows with the work: stacks of 1, 5 and 20 services (one shared image, roles
//! and config, a task definition family and a service each, as in examples/fleet), each
//! deployed first and then re-deployed with nothing changed, and the plot of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::chain::{self, Runner, Step};
use crate::util::Result;

use super::Measure;

/// The stack sizes measured.
pub const SIZES: [usize; 3] = [1, 5, 20];

/// One size's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizeRow {
    pub services: usize,
    pub first: Measure,
    pub no_op: Measure,
}

/// A stack file of `n` services in `dir`, named `app`.
pub fn stack_file(dir: &Path, app: &str, image_tag: &str, n: usize) -> Result<std::path::PathBuf> {
    let examples = crate::util::workspace_root().join("examples");
    let mut text = format!(
        r#"[app]
name = "{app}"
region = "{region}"
[image]
source = "ecskit-bench:{image_tag}"
repository = "{app}"
tags = ["{image_tag}"]
[roles]
bucket = "{app}"
prefix = "config"
[config]
files = ["{config}"]
[task_definition]
file = "{taskdef}"
[service]
cluster = "{app}"
wait = false
"#,
        region = crate::local::REGION,
        config = examples.join("config").display(),
        taskdef = examples.join("taskdef.json").display(),
    );
    for i in 1..=n {
        text.push_str(&format!(
            "[services.s{i:02}]\ntask_definition = {{ family = \"{app}-s{i:02}\" }}\n"
        ));
    }
    let path = dir.join(format!("{app}.toml"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Deploys a stack of each size twice (first, then with nothing changed), then removes it.
pub fn measure(
    runner: &Runner,
    state: &crate::local::State,
    dir: &Path,
    run_id: &str,
) -> Result<Vec<SizeRow>> {
    let mut rows = Vec::new();
    for n in SIZES {
        eprintln!("bench: {n} service(s)");
        let app = format!("bench-n{n}-{run_id}");
        let path = stack_file(dir, &app, run_id, n)?;
        let stacks = chain::load_stack(&path).map_err(|(e, _)| e)?;
        let first = super::chain(runner, &stacks, &Step::CHAIN, &mut BTreeMap::new())?;
        let no_op = super::chain(runner, &stacks, &Step::CHAIN, &mut BTreeMap::new())?;
        if no_op.calls.mutating != 0 {
            eprintln!(
                "bench: warning: the no-change re-deploy of {n} made {} mutating calls",
                no_op.calls.mutating
            );
        }
        rows.push(SizeRow {
            services: n,
            first,
            no_op,
        });
        let code = crate::destroy::destroy(
            &stacks,
            false,
            chain::Format::Json,
            chain::DEFAULT_JOBS,
            Some((state, &runner.bin_dir)),
        );
        if code != std::process::ExitCode::SUCCESS {
            eprintln!("bench: warning: destroying the {n}-service stack failed");
        }
    }
    Ok(rows)
}

/// The table for README.
pub fn render(rows: &[SizeRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.services.to_string()];
            cells.extend(r.first.cells());
            cells.extend(r.no_op.cells());
            cells
        })
        .collect();
    super::markdown(
        &[
            "services",
            "first deploy",
            "calls (mutating)",
            "no-change re-deploy",
            "calls (mutating)",
        ],
        &rows,
    )
}

/// The issue's targets for the sizes: 20 services' first deploy at most 4 times one's; their
/// no-change re-deploy without a mutating call and under 1 s.
pub fn targets(rows: &[SizeRow]) -> Vec<(String, bool)> {
    let (Some(one), Some(twenty)) = (
        rows.iter().find(|r| r.services == 1),
        rows.iter().find(|r| r.services == 20),
    ) else {
        return Vec::new();
    };
    let ratio = twenty.first.time.as_secs_f64() / one.first.time.as_secs_f64().max(1e-9);
    vec![
        (
            format!("first deploy of 20 services at most 4x that of 1 ({ratio:.1}x)"),
            ratio <= 4.0,
        ),
        (
            format!(
                "no-change re-deploy of 20 services makes zero mutating calls ({})",
                twenty.no_op.calls.mutating
            ),
            twenty.no_op.calls.mutating == 0,
        ),
        (
            format!(
                "no-change re-deploy of 20 services under 1 s ({:.2} s)",
                twenty.no_op.time.as_secs_f64()
            ),
            twenty.no_op.time < Duration::from_secs(1),
        ),
    ]
}

/// Time against service count, first deploy and no-op, as a small SVG. Written out by hand:
/// two polylines, their points and a few labels are all it takes, and a plotting crate would
/// need a font backend to place its text.
pub fn plot(rows: &[SizeRow], machine: &str) -> String {
    let (w, h) = (520.0_f64, 320.0_f64);
    let (left, right, top, bottom) = (60.0, 20.0, 40.0, 50.0);
    let max_n = rows.iter().map(|r| r.services).max().unwrap_or(1) as f64;
    let max_t = rows
        .iter()
        .map(|r| r.first.time.max(r.no_op.time).as_secs_f64())
        .fold(0.0_f64, f64::max);
    // A round top for the y axis: 1, 2, 5, 10, 20, ... seconds.
    let top_t = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]
        .into_iter()
        .find(|t| *t >= max_t)
        .unwrap_or(max_t.ceil());
    let x = |n: f64| left + (n / max_n) * (w - left - right);
    let y = |t: f64| h - bottom - (t / top_t) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">cargo xtask deploy: time against services</text>\n\
         <text x=\"{left}\" y=\"34\" font-size=\"10\" fill=\"#555\">{}</text>\n",
        escape(machine)
    );
    // Axes, ticks and grid.
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    ));
    for i in 0..=4 {
        let t = top_t * f64::from(i) / 4.0;
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{t} s</text>\n",
            w - right,
            left - 6.0,
            y(t) + 4.0,
            y = y(t)
        ));
    }
    for r in rows {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(r.services as f64),
            h - bottom + 16.0,
            r.services
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">services in the stack</text>\n",
        (left + w - right) / 2.0,
        h - 12.0
    ));
    let series: [Series; 2] = [
        ("first deploy", "#1f77b4", |r| r.first.time),
        ("no-change re-deploy", "#ff7f0e", |r| r.no_op.time),
    ];
    for (k, (name, colour, time)) in series.iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{:.1},{:.1}",
                    x(r.services as f64),
                    y(time(r).as_secs_f64())
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        ));
        for r in rows {
            let (px, py) = (x(r.services as f64), y(time(r).as_secs_f64()));
            svg.push_str(&format!(
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{colour}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{colour}\">{:.2} s</text>\n",
                px + 5.0,
                py - 5.0,
                time(r).as_secs_f64()
            ));
        }
        let ly = top + 14.0 + 16.0 * k as f64;
        svg.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{name}</text>\n",
            left + 12.0,
            left + 32.0,
            left + 38.0,
            ly + 4.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// A line of the plot: its name, its colour, and the time it shows of a row.
type Series = (&'static str, &'static str, fn(&SizeRow) -> Duration);

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Calls;

    fn row(services: usize, first_ms: u64, no_op_ms: u64) -> SizeRow {
        let m = |ms, mutating| Measure {
            time: Duration::from_millis(ms),
            calls: Calls {
                total: 10 * services,
                mutating,
            },
        };
        SizeRow {
            services,
            first: m(first_ms, 3 * services),
            no_op: m(no_op_ms, 0),
        }
    }

    #[test]
    fn the_table_and_targets_follow_the_rows() {
        let rows = [row(1, 500, 200), row(5, 900, 300), row(20, 2400, 1200)];
        let table = render(&rows);
        assert_eq!(
            table.lines().last().unwrap(),
            "| 20 | 2.40 s | 200 (60) | 1.20 s | 200 (0) |"
        );
        let checks = targets(&rows);
        assert_eq!(
            checks.iter().map(|(_, ok)| *ok).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert!(checks[0].0.contains("4.8x"), "{}", checks[0].0);
    }

    #[test]
    fn the_plot_has_a_line_and_a_point_per_size_for_each_series() {
        let rows = [row(1, 500, 200), row(5, 900, 300), row(20, 2400, 1200)];
        let svg = plot(&rows, "2 cores <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("2 cores &lt;test&gt;"));
        // The y axis tops at the next round number above the slowest point (2.4 s -> 5 s).
        assert!(svg.contains(">5 s</text>"), "{svg}");
        assert!(svg.contains(">2.40 s</text>"));
    }
}
