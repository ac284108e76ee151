//! `cargo xtask bench` (placeholder, filled in below).
use std::process::ExitCode;
#[derive(clap::Args, Debug)]
pub struct Args {}
pub fn main(_args: Args) -> ExitCode { ExitCode::SUCCESS }
