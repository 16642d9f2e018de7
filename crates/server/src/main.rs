//! The `greenroom` binary; see the library crate for everything it does.

use std::process::ExitCode;

use clap::Parser;
use greenroom::config::Cli;

fn main() -> ExitCode {
    match greenroom::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("greenroom: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
