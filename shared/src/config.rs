//! config-upload: configuration files to S3.
//! (Filled in by the config-upload issue.)
