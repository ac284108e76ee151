//! role-create and instance-profile: least-privilege IAM roles over one convergent layer.
//!
//! - [`policy`]: the policy documents the steps build, checks of user-supplied ones, and
//!   comparison by meaning (IAM answers URL-encoded and reordered);
//! - [`role`]: bring one role to a desired state with no mutating call when it matches, print
//!   what drifted, and delete what ecskit created;
//! - [`role_create`]: the task role and the execution role;
//! - [`instance_profile`]: the container-instance role and its instance profile.

pub mod instance_profile;
pub mod policy;
pub mod role;
pub mod role_create;
