//! sandload: load and run untrusted Keras models in a fail-closed Linux sandbox.
//! `main` only parses the command line and dispatches; each command lives in its own module.

mod broker;
mod cli;
mod doctor;
mod exit;
mod init;
mod policy;
mod python;
mod runner;
mod sandbox;
mod scan;
mod serve;
mod tensors;
mod text;

use clap::Parser;

fn main() {
    init::become_init_if_pid1();
    let cli = cli::Cli::parse();
    let code = match cli.command {
        // The helper must stay single-threaded (unshare(CLONE_NEWUSER) fails in a
        // threaded process), so it runs before any runtime exists.
        cli::Command::SandboxHelper { fds } => sandbox::helper_main(&fds),
        cli::Command::Scan(args) => report(scan::run(&args)),
        cli::Command::Serve(args) => report(run_async(serve::run(*args))),
        cli::Command::Doctor(args) => report(doctor::run(&args)),
        cli::Command::Run(args) => report(run_async(runner::run(*args))),
        cli::Command::BenchExec { python, args } => report(run_async(runner::bench::exec_only(python, args))),
    };
    std::process::exit(code);
}

fn run_async<F: std::future::Future<Output = anyhow::Result<i32>>>(fut: F) -> anyhow::Result<i32> {
    // One thread is enough: the supervisor only moves bytes between pipes and files.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(fut)
}

fn report(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) => {
            let exit = exit::exit_of(&err);
            eprintln!("sandload: error: {}", text::escape(&format!("{err:#}")));
            exit.code()
        }
    }
}
