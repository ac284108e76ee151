//! The names of the steps' outputs. `--output env` prints each as `ECSKIT_<NAME>=value`, which
//! the next step's flag reads (`taskdef-register --image` reads `ECSKIT_IMAGE_URI`);
//! `--output github` prints `<name>=value`. A flag that reads another step's output names its
//! variable with [`var`]-built constants (the `ECSKIT_*` forms below), so the two cannot drift.

/// image-push: the pushed image by digest (or, in a dry run, by tag).
pub const IMAGE_URI: &str = "IMAGE_URI";
pub const IMAGE_TAG_URI: &str = "IMAGE_TAG_URI";
pub const IMAGE_DIGEST: &str = "IMAGE_DIGEST";
pub const REPOSITORY_URI: &str = "REPOSITORY_URI";
/// role-create.
pub const TASK_ROLE_ARN: &str = "TASK_ROLE_ARN";
pub const TASK_ROLE_NAME: &str = "TASK_ROLE_NAME";
pub const EXECUTION_ROLE_ARN: &str = "EXECUTION_ROLE_ARN";
pub const EXECUTION_ROLE_NAME: &str = "EXECUTION_ROLE_NAME";
/// instance-profile.
pub const INSTANCE_PROFILE_ARN: &str = "INSTANCE_PROFILE_ARN";
pub const INSTANCE_PROFILE_NAME: &str = "INSTANCE_PROFILE_NAME";
pub const INSTANCE_ROLE_ARN: &str = "INSTANCE_ROLE_ARN";
pub const INSTANCE_ROLE_NAME: &str = "INSTANCE_ROLE_NAME";
/// capacity-create: the capacity provider (the name a capacity provider strategy names), its
/// Auto Scaling group and launch template, and the AMI the template's newest version launches
/// (PREVIOUS_AMI_ID when this run replaced another one).
pub const CAPACITY_PROVIDER_NAME: &str = "CAPACITY_PROVIDER_NAME";
pub const CAPACITY_PROVIDER_ARN: &str = "CAPACITY_PROVIDER_ARN";
pub const AUTO_SCALING_GROUP_NAME: &str = "AUTO_SCALING_GROUP_NAME";
pub const LAUNCH_TEMPLATE_ID: &str = "LAUNCH_TEMPLATE_ID";
pub const LAUNCH_TEMPLATE_VERSION: &str = "LAUNCH_TEMPLATE_VERSION";
pub const AMI_ID: &str = "AMI_ID";
pub const PREVIOUS_AMI_ID: &str = "PREVIOUS_AMI_ID";
/// config-upload.
pub const CONFIG_BUCKET: &str = "CONFIG_BUCKET";
pub const CONFIG_PREFIX: &str = "CONFIG_PREFIX";
pub const CONFIG_URI: &str = "CONFIG_URI";
pub const KEYS: &str = "KEYS";
/// taskdef-register.
pub const TASK_DEFINITION_ARN: &str = "TASK_DEFINITION_ARN";
pub const TASK_FAMILY: &str = "TASK_FAMILY";
pub const TASK_REVISION: &str = "TASK_REVISION";
pub const DIFF: &str = "DIFF";
/// service-run.
pub const CLUSTER_ARN: &str = "CLUSTER_ARN";
pub const SERVICE_ARN: &str = "SERVICE_ARN";
pub const DEPLOYMENT_ID: &str = "DEPLOYMENT_ID";
pub const ROLLOUT_STATE: &str = "ROLLOUT_STATE";
pub const DESIRED_COUNT: &str = "DESIRED_COUNT";
pub const RUNNING_COUNT: &str = "RUNNING_COUNT";
/// service-run following a blue/green, canary or linear deployment: the service deployment
/// followed (or acted on by `--continue`/`--stop-deployment`) and the lifecycle stage it is in.
pub const SERVICE_DEPLOYMENT_ARN: &str = "SERVICE_DEPLOYMENT_ARN";
pub const LIFECYCLE_STAGE: &str = "LIFECYCLE_STAGE";
/// task-run (and service-run's CLUSTER_ARN, TASK_DEFINITION_ARN): the tasks it started, their
/// ARNs separated by spaces with `--count`, and the first essential container's exit code.
pub const TASK_ARN: &str = "TASK_ARN";
pub const EXIT_CODE: &str = "EXIT_CODE";
/// A run that ran but failed (exit 3): the reason, beside the outputs known so far.
pub const FAILURE: &str = "FAILURE";
/// Every step: whether anything changed (or, in a dry run, would change).
pub const CHANGED: &str = "CHANGED";

/// A name as it may stand in a variable: upper case, every other character `_`
/// (`log-router` is `LOG_ROUTER`).
pub fn upper_snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A task run: each essential container's exit code, `EXIT_CODE_<CONTAINER>` with the
/// container's name in upper snake case (`log-router` is `EXIT_CODE_LOG_ROUTER`).
pub fn exit_code_of(container: &str) -> String {
    format!("{EXIT_CODE}_{}", upper_snake(container))
}

/// The prefix of every variable of the contract.
pub const PREFIX: &str = "ECSKIT_";

/// The environment variable of an output: `ECSKIT_<NAME>`.
pub fn var(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The environment variables that flags read, as string constants (clap's `env = ...` needs a
/// literal). Each is `ECSKIT_` + an output name above; a unit test checks that they agree.
pub mod env {
    pub const IMAGE_URI: &str = "ECSKIT_IMAGE_URI";
    pub const TASK_ROLE_ARN: &str = "ECSKIT_TASK_ROLE_ARN";
    pub const EXECUTION_ROLE_ARN: &str = "ECSKIT_EXECUTION_ROLE_ARN";
    pub const CONFIG_BUCKET: &str = "ECSKIT_CONFIG_BUCKET";
    pub const CONFIG_PREFIX: &str = "ECSKIT_CONFIG_PREFIX";
    pub const INSTANCE_PROFILE_NAME: &str = "ECSKIT_INSTANCE_PROFILE_NAME";
    pub const INSTANCE_ROLE_NAME: &str = "ECSKIT_INSTANCE_ROLE_NAME";
    pub const TASK_DEFINITION_ARN: &str = "ECSKIT_TASK_DEFINITION_ARN";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_variables_are_the_outputs_of_other_steps() {
        for (var_const, output) in [
            (env::IMAGE_URI, IMAGE_URI),
            (env::TASK_ROLE_ARN, TASK_ROLE_ARN),
            (env::EXECUTION_ROLE_ARN, EXECUTION_ROLE_ARN),
            (env::CONFIG_BUCKET, CONFIG_BUCKET),
            (env::CONFIG_PREFIX, CONFIG_PREFIX),
            (env::INSTANCE_PROFILE_NAME, INSTANCE_PROFILE_NAME),
            (env::INSTANCE_ROLE_NAME, INSTANCE_ROLE_NAME),
            (env::TASK_DEFINITION_ARN, TASK_DEFINITION_ARN),
        ] {
            assert_eq!(var_const, var(output));
        }
    }
}
