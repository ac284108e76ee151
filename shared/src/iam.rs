//! role-create and instance-profile: least-privilege IAM roles.
//! (Filled in by the role-create issue.)
