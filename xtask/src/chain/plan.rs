//! The units of a run: each step of each service as one process, what several services share
//! done once, and what waits for what.
//!
//! A unit is a step with its flags. Two services whose role-create (or image-push,
//! instance-profile, config-upload) flags come out the same share one unit, so a role that
//! every service uses is made by one process, not raced by twenty. Task definitions and
//! services are each service's own. Waiting follows the data: a service's taskdef-register
//! waits for the units that give it its image and roles, its service-run for its
//! taskdef-register, and nothing waits for another service's steps. That is what lets one
//! service's failure leave the others' steps running.
//!
//! Removing follows the same units in reverse: a service before its task definition, those
//! before the roles, images and config they name, and a shared cluster only after its last
//! service.

use crate::stack::{Stack, Stacks};

use super::flags::ORDER;
use super::{Mode, Step, stack_steps, step_args};

/// One process of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub step: Step,
    pub args: Vec<String>,
    /// The services it is for (indices into [`Stacks::services`]), in the file's order.
    pub services: Vec<usize>,
    /// The units that must end well before it starts (indices into the plan).
    pub after: Vec<usize>,
}

/// What `--only` and `--from` leave of a stack: these steps of these services (empty: all).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub steps: Vec<Step>,
    pub services: Vec<usize>,
}

impl Selection {
    fn has_step(&self, step: Step) -> bool {
        self.steps.is_empty() || self.steps.contains(&step)
    }
    fn has_service(&self, i: usize) -> bool {
        self.services.is_empty() || self.services.contains(&i)
    }

    /// Reads `--only` and `--from` values: each is a step's name or a service's key. Steps
    /// and services combine: `--only web,service-run` is web's service-run. `--from` a step
    /// is that step and the ones after it; `--from` a service is that service and the ones
    /// after it in the file.
    pub fn parse(
        stacks: &Stacks,
        only: &[String],
        from: Option<&str>,
    ) -> Result<Selection, String> {
        let mut sel = Selection::default();
        let keys: Vec<&str> = stacks
            .services
            .iter()
            .filter_map(|s| s.key.as_deref())
            .collect();
        let name = |v: &str| -> Result<Result<Step, usize>, String> {
            if let Some(step) = Step::from_binary(v) {
                return Ok(Ok(step));
            }
            if let Some(i) = stacks
                .services
                .iter()
                .position(|s| s.key.as_deref() == Some(v))
            {
                return Ok(Err(i));
            }
            let steps: Vec<&str> = ORDER.iter().map(|s| s.binary()).collect();
            Err(format!(
                "'{v}' is neither a step ({}) nor a service of this stack ({})",
                steps.join(", "),
                if keys.is_empty() {
                    "it has one, without [services]".to_string()
                } else {
                    keys.join(", ")
                }
            ))
        };
        for v in only {
            match name(v)? {
                Ok(step) => sel.steps.push(step),
                Err(i) => sel.services.push(i),
            }
        }
        if let Some(v) = from {
            match name(v)? {
                Ok(step) => sel.steps = ORDER.into_iter().skip_while(|s| *s != step).collect(),
                Err(i) => sel.services = (i..stacks.services.len()).collect(),
            }
        }
        // A step the stack does not have is a mistake worth saying, not an empty run.
        for step in &sel.steps {
            if from.is_none()
                && !stacks
                    .services
                    .iter()
                    .any(|s| stack_steps(s).contains(step))
            {
                return Err(format!(
                    "{} is not part of this stack ({}): add its section to the stack file",
                    step.binary(),
                    match step {
                        Step::InstanceProfile => "no [instance_profile]",
                        Step::CapacityCreate => "no [capacity]",
                        Step::ConfigUpload => "no [config] files",
                        Step::TaskRun => "no [before] task",
                        _ => "not configured",
                    }
                ));
            }
        }
        Ok(sel)
    }

    /// Whether the run leaves out some of a service's steps (whose outputs then come from
    /// the last run).
    pub fn is_partial(&self, stack: &Stack) -> bool {
        stack_steps(stack).iter().any(|s| !self.has_step(*s))
    }
}

/// The units of a deploy of the selected steps and services.
pub fn deploy(stacks: &Stacks, sel: &Selection) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (i, stack) in stacks.services.iter().enumerate() {
        if !sel.has_service(i) {
            continue;
        }
        let mut mine: Vec<usize> = Vec::new();
        for step in stack_steps(stack) {
            if !sel.has_step(step) {
                continue;
            }
            let args = step_args(step, stack, Mode::Deploy);
            // capacity-create, a later stage, is the cluster's, not the service's: shared too.
            let shared = (step.stage() == 0 || step == Step::CapacityCreate)
                .then(|| units.iter().position(|u| u.step == step && u.args == args))
                .flatten();
            let u = match shared {
                Some(u) => {
                    units[u].services.push(i);
                    u
                }
                None => {
                    // A service's later step waits for its earlier ones in this run.
                    // capacity-create is beside that line: it reads only the instance profile,
                    // and only what places tasks (task-run, service-run) needs its capacity.
                    let is_capacity = |u: &usize| units[*u].step == Step::CapacityCreate;
                    let after = if step.stage() == 0 {
                        Vec::new()
                    } else if step == Step::CapacityCreate {
                        mine.iter()
                            .copied()
                            .filter(|u| units[*u].step == Step::InstanceProfile)
                            .collect()
                    } else {
                        let last = mine
                            .iter()
                            .filter(|u| !is_capacity(u))
                            .map(|u| units[*u].step.stage())
                            .max();
                        let places = matches!(step, Step::TaskRun | Step::ServiceRun);
                        mine.iter()
                            .copied()
                            .filter(|u| {
                                if is_capacity(u) {
                                    places
                                } else {
                                    Some(units[*u].step.stage()) == last
                                }
                            })
                            .collect()
                    };
                    units.push(Unit {
                        step,
                        args,
                        services: vec![i],
                        after,
                    });
                    units.len() - 1
                }
            };
            mine.push(u);
        }
    }
    units
}

/// The units of removing everything the stack made, in reverse.
pub fn destroy(stacks: &Stacks) -> Vec<Unit> {
    // The chain's steps: a before task leaves nothing behind to remove.
    let chain = Selection {
        steps: Step::CHAIN.to_vec(),
        services: Vec::new(),
    };
    let deployed = deploy(stacks, &chain);
    let mut units: Vec<Unit> = Vec::new();
    // The deploy's units, each made a delete (two deploy units that name the same thing, such
    // as two config uploads to one prefix, become one delete).
    let mut of: Vec<usize> = Vec::new();
    // Service-run first, the rest in reverse chain order; a shared cluster goes with its last
    // service.
    let mut order: Vec<usize> = (0..deployed.len()).collect();
    order.sort_by_key(|u| std::cmp::Reverse(deployed[*u].step));
    for &d in &order {
        let unit = &deployed[d];
        let stack = &stacks.services[unit.services[0]];
        let mut args = step_args(unit.step, stack, Mode::Delete);
        // A cluster with EC2 capacity holds container instances until capacity-create's
        // removal (after the services) is done: ECS refuses to delete it before, so
        // capacity-create's removal deletes it (--delete-cluster), not service-run's.
        if unit.step == Step::ServiceRun
            && (!last_of_cluster(stacks, unit.services[0]) || stack.capacity.is_some())
        {
            args.retain(|a| a != "--delete-cluster");
        }
        match units
            .iter()
            .position(|u| u.step == unit.step && u.args == args)
        {
            Some(u) => {
                units[u].services.extend(unit.services.iter().copied());
                of.push(u);
            }
            None => {
                units.push(Unit {
                    step: unit.step,
                    args,
                    services: unit.services.clone(),
                    after: Vec::new(),
                });
                of.push(units.len() - 1);
            }
        }
    }
    let deleted = |d: usize| of[order.iter().position(|o| *o == d).unwrap_or(0)];
    // Reverse the deploy's waiting: what waited for a unit is removed before it.
    for (d, unit) in deployed.iter().enumerate() {
        for &before in &unit.after {
            let (first, then) = (deleted(d), deleted(before));
            if first != then && !units[then].after.contains(&first) {
                units[then].after.push(first);
            }
        }
    }
    // Stage-0 steps that nothing waited for in the deploy (a run without taskdef-register)
    // still wait for their services' removal; a cluster waits for all its services; two
    // removals of one bucket one after the other.
    for u in 0..units.len() {
        let waits: Vec<usize> = (0..units.len())
            .filter(|&o| o != u && must_wait(stacks, &units[u], &units[o]))
            .collect();
        for o in waits {
            if !units[u].after.contains(&o) && !units[o].after.contains(&u) {
                units[u].after.push(o);
            }
        }
    }
    units
}

/// Whether, when removing, `u` waits for `o`.
fn must_wait(stacks: &Stacks, u: &Unit, o: &Unit) -> bool {
    let shares_service = u.services.iter().any(|s| o.services.contains(s));
    let cluster = |x: &Unit| stacks.services[x.services[0]].cluster.clone();
    match (u.step, o.step) {
        (Step::ServiceRun, Step::ServiceRun) => {
            u.args.iter().any(|a| a == "--delete-cluster") && cluster(u) == cluster(o)
        }
        (Step::ConfigUpload, Step::ConfigUpload) => {
            stacks.services[u.services[0]].bucket == stacks.services[o.services[0]].bucket
                && units_order(u, o)
        }
        (a, b) => a.stage() == 0 && b.stage() > 0 && shares_service,
    }
}

/// A fixed order between two removals of one bucket (the one with the lower first service
/// goes first).
fn units_order(u: &Unit, o: &Unit) -> bool {
    (o.services[0], &o.args) < (u.services[0], &u.args)
}

/// Whether service `i` is the last of the file's services in its cluster.
fn last_of_cluster(stacks: &Stacks, i: usize) -> bool {
    let cluster = &stacks.services[i].cluster;
    !stacks.services[i + 1..]
        .iter()
        .any(|s| &s.cluster == cluster)
}

/// The steps the units run, once each in chain order (what the runner builds).
pub fn steps(units: &[Unit]) -> Vec<Step> {
    let mut steps: Vec<Step> = units.iter().map(|u| u.step).collect();
    steps.sort();
    steps.dedup();
    steps
}

/// The units in the order they could run one at a time (for a plan shown before a run, and the
/// summary).
pub fn in_order(units: &[Unit]) -> Vec<usize> {
    let mut done: Vec<usize> = Vec::new();
    while done.len() < units.len() {
        let before = done.len();
        for (i, u) in units.iter().enumerate() {
            if !done.contains(&i) && u.after.iter().all(|a| done.contains(a)) {
                done.push(i);
            }
        }
        if done.len() == before {
            // A cycle cannot come out of the plans above; show the rest as they are.
            let rest: Vec<usize> = (0..units.len()).filter(|i| !done.contains(i)).collect();
            done.extend(rest);
        }
    }
    done
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn stacks(text: &str) -> Stacks {
        let d = tempfile::tempdir().unwrap().keep();
        for f in ["web.json", "worker.json"] {
            std::fs::write(
                d.join(f),
                format!(r#"{{"family": "{}"}}"#, f.trim_end_matches(".json")),
            )
            .unwrap();
        }
        std::fs::write(d.join("a.properties"), "a=1").unwrap();
        let mut s = crate::stack::parse(text, &d).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        s.path = d.join("ecskit.toml");
        s
    }

    pub(crate) const TWO: &str = r#"
[app]
name = "shop"
region = "eu-west-1"
[image]
source = "shop:1"
[roles]
bucket = "shop-config"
[config]
files = ["a.properties"]
[service]
wait = false
[services.web]
task_definition = { file = "web.json" }
service = { count = 2 }
[services.worker]
task_definition = { file = "worker.json" }
"#;

    fn names(units: &[Unit], ids: &[usize]) -> Vec<String> {
        ids.iter()
            .map(|u| format!("{}{:?}", units[*u].step.binary(), units[*u].services))
            .collect()
    }

    #[test]
    fn what_services_share_is_one_unit_and_the_rest_waits_for_its_own() {
        let s = stacks(TWO);
        let units = deploy(&s, &Selection::default());
        assert_eq!(
            names(&units, &(0..units.len()).collect::<Vec<_>>()),
            [
                "image-push[0, 1]",
                "role-create[0, 1]",
                "config-upload[0, 1]",
                "taskdef-register[0]",
                "service-run[0]",
                "taskdef-register[1]",
                "service-run[1]"
            ]
        );
        assert_eq!(units[3].after, [0, 1, 2]);
        assert_eq!(units[4].after, [3]);
        assert_eq!(units[5].after, [0, 1, 2]);
        assert_eq!(units[6].after, [5]);
    }

    #[test]
    fn only_and_from_take_steps_and_services() {
        let s = stacks(TWO);
        let sel = Selection::parse(&s, &["worker".into(), "service-run".into()], None).unwrap();
        let units = deploy(&s, &sel);
        assert_eq!(names(&units, &[0]), ["service-run[1]"]);
        assert!(units[0].after.is_empty());
        let sel = Selection::parse(&s, &[], Some("taskdef-register")).unwrap();
        assert_eq!(deploy(&s, &sel).len(), 4);
        let sel = Selection::parse(&s, &[], Some("worker")).unwrap();
        assert!(deploy(&s, &sel).iter().all(|u| u.services == [1]));
        let err = Selection::parse(&s, &["wrker".into()], None).unwrap_err();
        assert!(err.contains("web, worker"), "{err}");
        let err = Selection::parse(&s, &["instance-profile".into()], None).unwrap_err();
        assert!(err.contains("[instance_profile]"), "{err}");
    }

    #[test]
    fn removal_goes_in_reverse_and_the_cluster_goes_last() {
        let s = stacks(TWO);
        let units = destroy(&s);
        let order = in_order(&units);
        let shown = names(&units, &order);
        let pos = |n: &str| shown.iter().position(|x| x == n).unwrap();
        // Both services before any task definition of theirs; the cluster with the last.
        assert!(pos("service-run[0]") < pos("taskdef-register[0]"));
        assert!(pos("service-run[1]") < pos("taskdef-register[1]"));
        assert!(pos("taskdef-register[0]") < pos("role-create[0, 1]"));
        assert!(pos("taskdef-register[1]") < pos("image-push[0, 1]"));
        let cluster: Vec<&Unit> = units
            .iter()
            .filter(|u| u.args.iter().any(|a| a == "--delete-cluster"))
            .collect();
        assert_eq!(cluster.len(), 1);
        assert_eq!(cluster[0].services, [1]);
        assert!(pos("service-run[0]") < pos("service-run[1]"));
    }

    #[test]
    fn a_before_task_runs_between_the_task_definition_and_the_service_and_is_not_destroyed() {
        let s = stacks(&format!(
            "{TWO}\n[services.web.before]\ncommand = [\"bin/migrate\"]\n"
        ));
        let units = deploy(&s, &Selection::default());
        let shown = names(&units, &(0..units.len()).collect::<Vec<_>>());
        assert_eq!(
            shown[3..6],
            ["taskdef-register[0]", "task-run[0]", "service-run[0]"]
        );
        // Only web has one; its service waits for it, and it for the task definition.
        assert_eq!(units[4].after, [3]);
        assert_eq!(units[5].after, [4]);
        assert_eq!(units[7].after, [6]);
        let sel = Selection::parse(&s, &[], Some("task-run")).unwrap();
        assert_eq!(
            deploy(&s, &sel).iter().map(|u| u.step).collect::<Vec<_>>(),
            [Step::TaskRun, Step::ServiceRun, Step::ServiceRun]
        );
        let sel = Selection::parse(&s, &["task-run".into()], None).unwrap();
        assert_eq!(names(&deploy(&s, &sel), &[0]), ["task-run[0]"]);
        assert!(destroy(&s).iter().all(|u| u.step != Step::TaskRun));
        let err = Selection::parse(&stacks(TWO), &["task-run".into()], None).unwrap_err();
        assert!(err.contains("no [before] task"), "{err}");
    }

    #[test]
    fn capacity_is_shared_after_the_profile_and_before_the_services_and_removed_between() {
        let s = stacks(&format!(
            "{TWO}\n[instance_profile]\n[capacity]\ninstance_types = [\"t3.medium\"]\n"
        ));
        let units = deploy(&s, &Selection::default());
        let at = |n: &str| {
            let all = names(&units, &(0..units.len()).collect::<Vec<_>>());
            all.iter().position(|x| x == n).unwrap()
        };
        let capacity = at("capacity-create[0, 1]");
        // It reads the instance profile only; the task definitions wait for what they read
        // (config-upload too), not for it; what places tasks waits for it.
        assert_eq!(units[capacity].after, [at("instance-profile[0, 1]")]);
        assert!(
            units[at("taskdef-register[0]")]
                .after
                .contains(&at("config-upload[0, 1]"))
        );
        assert!(!units[at("taskdef-register[0]")].after.contains(&capacity));
        for svc in ["service-run[0]", "service-run[1]"] {
            assert!(units[at(svc)].after.contains(&capacity), "{svc}");
        }
        let units = destroy(&s);
        let order = in_order(&units);
        let shown = names(&units, &order);
        let pos = |n: &str| shown.iter().position(|x| x == n).unwrap();
        assert!(
            pos("service-run[1]") < pos("capacity-create[0, 1]"),
            "{shown:?}"
        );
        assert!(
            pos("service-run[0]") < pos("capacity-create[0, 1]"),
            "{shown:?}"
        );
        assert!(
            pos("capacity-create[0, 1]") < pos("instance-profile[0, 1]"),
            "{shown:?}"
        );
        // The cluster holds the instances until capacity-create is done: capacity-create's
        // removal deletes it (when ecskit made it and it is empty), not service-run's.
        let with_cluster: Vec<String> = units
            .iter()
            .filter(|u| u.args.iter().any(|a| a == "--delete-cluster"))
            .map(|u| u.step.binary().to_string())
            .collect();
        assert_eq!(with_cluster, ["capacity-create"]);
    }
}
