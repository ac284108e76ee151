//! The IAM layer that role-create and instance-profile share: least-privilege roles that
//! converge.
//!
//! - [`policy`]: the policy documents the steps build, checks of user-supplied ones, and
//!   comparison by meaning (IAM answers URL-encoded and reordered);
//! - [`role`]: bring one role to a desired state with no mutating call when it matches, print
//!   what drifted, and delete what ecskit created.
//!
//! The steps themselves are [`crate::role_create`] and [`crate::instance_profile`].

pub mod policy;
pub mod role;
