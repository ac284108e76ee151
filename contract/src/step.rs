//! The eight steps: their binary names, their order in the chain (seven of them: task-run runs
//! one-off tasks beside it), and their main outputs.

use crate::outputs as o;

/// One binary of the chain, in the order of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    ImagePush,
    RoleCreate,
    InstanceProfile,
    /// EC2 capacity (launch template, Auto Scaling group, capacity provider) for the cluster.
    CapacityCreate,
    ConfigUpload,
    TaskdefRegister,
    ServiceRun,
    /// One-off tasks: not a stage of the chain ([`Step::CHAIN`]), a binary of its own.
    TaskRun,
}

impl Step {
    /// Every binary (releases, man pages, completions, the action's install): the chain's,
    /// then task-run.
    pub const ALL: [Step; 8] = {
        let c = Step::CHAIN;
        [c[0], c[1], c[2], c[3], c[4], c[5], c[6], Step::TaskRun]
    };

    /// The steps a stack's deploy runs, in order.
    pub const CHAIN: [Step; 7] = [
        Step::ImagePush,
        Step::RoleCreate,
        Step::InstanceProfile,
        Step::CapacityCreate,
        Step::ConfigUpload,
        Step::TaskdefRegister,
        Step::ServiceRun,
    ];

    /// The binary's name, which is also the step's name on the command line.
    pub fn binary(self) -> &'static str {
        match self {
            Step::ImagePush => "image-push",
            Step::RoleCreate => "role-create",
            Step::InstanceProfile => "instance-profile",
            Step::CapacityCreate => "capacity-create",
            Step::ConfigUpload => "config-upload",
            Step::TaskdefRegister => "taskdef-register",
            Step::ServiceRun => "service-run",
            Step::TaskRun => "task-run",
        }
    }

    /// The step whose binary has this name.
    pub fn from_binary(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.binary() == name)
    }

    /// Steps of one stage do not depend on each other and may run at the same time; a stage
    /// reads the outputs of the stages before it.
    pub fn stage(self) -> u8 {
        match self {
            Step::ImagePush | Step::RoleCreate | Step::InstanceProfile | Step::ConfigUpload => 0,
            // Its launch template names instance-profile's profile.
            Step::TaskdefRegister | Step::CapacityCreate => 1,
            // A one-off task reads the registered task definition, as service-run does.
            Step::ServiceRun | Step::TaskRun => 2,
        }
    }

    /// The outputs a summary shows for the step (`--output json` has them all).
    pub fn key_outputs(self) -> &'static [&'static str] {
        match self {
            Step::ImagePush => &[o::IMAGE_URI],
            Step::RoleCreate => &[o::TASK_ROLE_ARN, o::EXECUTION_ROLE_ARN],
            Step::InstanceProfile => &[o::INSTANCE_PROFILE_ARN],
            Step::CapacityCreate => &[o::CAPACITY_PROVIDER_NAME, o::AMI_ID],
            Step::ConfigUpload => &[o::CONFIG_URI],
            Step::TaskdefRegister => &[o::TASK_DEFINITION_ARN],
            Step::ServiceRun => &[o::SERVICE_ARN, o::DEPLOYMENT_ID],
            Step::TaskRun => &[o::TASK_ARN, o::EXIT_CODE],
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.binary())
    }
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Step, String> {
        Step::from_binary(s).ok_or_else(|| {
            let names: Vec<&str> = Step::ALL.iter().map(|s| s.binary()).collect();
            format!("'{s}' is not a step: one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Step::ALL {
            assert_eq!(s.binary().parse::<Step>(), Ok(s));
        }
        assert!("image_push".parse::<Step>().is_err());
    }

    #[test]
    fn every_binary_is_listed_once_and_the_chain_is_all_but_task_run() {
        assert_eq!(Step::ALL[..7], Step::CHAIN);
        assert_eq!(Step::ALL[7], Step::TaskRun);
        assert!(!Step::CHAIN.contains(&Step::TaskRun));
    }
}
