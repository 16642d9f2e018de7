//! The `greenroom` binary; see the library crate for everything it does.

use std::process::ExitCode;

use clap::Parser;
use greenroom::config::Cli;

/// mimalloc: the media path allocates and frees per forwarded packet, and mimalloc does that in
/// less time than the system allocator (about a sixth less server CPU per forwarded packet in
/// `benches/fanout.sh`, for some 15 % more resident memory per viewer).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match greenroom::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("greenroom: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
