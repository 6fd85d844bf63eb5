//! Command-line interface: the contract users and tests rely on.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const RUN_AFTER_HELP: &str = "\
Exit codes:
  0  ok                         4  violation or protocol breach   7   sandbox could not be set up
  2  usage or bad input file    5  timeout                        70  internal error
  3  the model raised           6  resource limit                 130 interrupted (Ctrl-C, SIGTERM)

The model runs in a child that is confined before Python starts: user, pid, net, mount, ipc,
uts and cgroup namespaces; a fresh read-only root holding only the interpreter, system
libraries and the model; a private size-capped /tmp; no capabilities; no_new_privs; Landlock;
a seccomp allowlist; resource limits. Only tensors cross back, over a bounded frame protocol.
If any layer cannot be applied, sandload refuses (exit 7) and names the layer and the fix;
see `sandload doctor`.";

#[derive(Parser, Debug)]
#[command(name = "sandload", version, about = "Load and run untrusted Keras models in a fail-closed sandbox")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load a model in the sandbox; print its signature, or predict on the given inputs.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(Box<RunArgs>),
    /// Statically triage model files for code they would run, without running anything.
    Scan(crate::scan::ScanArgs),
    /// Serve models over the Open Inference Protocol V2 (Triton/KServe clients), one sandbox
    /// per worker.
    Serve(Box<crate::serve::ServeArgs>),
    /// Show which confinement layers this host offers, and how to fix what is missing.
    Doctor(DoctorArgs),
    /// Internal, for benchmarks: full confinement around the interpreter with these arguments
    /// (e.g. `-c pass`), through the same plan and helper as `run`, without the broker.
    #[command(name = "__bench-exec", hide = true)]
    BenchExec {
        #[arg(long)]
        python: Option<PathBuf>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Internal: the single-threaded helper that confines itself and starts the interpreter.
    #[command(name = "__sandbox-helper", hide = true)]
    SandboxHelper {
        /// The supervisor's fd numbers for plan, status, broker-in, broker-out.
        #[arg(long, value_delimiter = ',')]
        fds: Vec<i32>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Model: a .h5/.hdf5 or .keras file, or a SavedModel directory.
    pub model: PathBuf,

    /// Input tensor: [NAME=]PATH with PATH a .npy (one tensor), .npz (by name) or .json
    /// ({"name": nested list} or a nested list). Repeatable.
    #[arg(short, long = "input", value_name = "[NAME=]PATH")]
    pub inputs: Vec<String>,

    /// Write outputs to PATH: .npy (single output), .npz or .json.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Print a machine-readable result on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,

    /// Write the JSON run report (verdict, signature, timings, layers, child output, events).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Interpreter inside the sandbox [default: $SANDLOAD_PYTHON, else the checkout's .venv,
    /// else python3 on PATH, resolved to an absolute path before confining].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// Wall-clock limit in seconds for the whole run; the child tree is killed after it.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,

    /// Memory limit for the child, e.g. 2G or 512M [default: from the policy].
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Most processes + threads the child may have [default: from the policy].
    #[arg(long, value_name = "N")]
    pub max_procs: Option<u64>,

    /// Largest total tensor bytes accepted from the child in one response, e.g. 4G.
    #[arg(long, value_name = "SIZE", default_value = "4G")]
    pub max_output_bytes: String,

    /// Confinement policy (TOML) to use instead of the built-in default.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Keras `safe_mode` where the loading API has it (Keras >= 2.13 zip format, Keras 3).
    /// Not a defence (CVE-2025-1550 and later bypass it); the sandbox is.
    #[arg(long, value_enum, default_value_t = SafeMode::On)]
    pub safe_mode: SafeMode,

    /// Accept a Landlock ABI lower than the policy requires (the report names it).
    #[arg(long, value_name = "ABI")]
    pub landlock_min_abi: Option<u8>,

    /// Do not print the static scan findings before running.
    #[arg(long)]
    pub no_scan: bool,

    /// Print the child's captured output even when the run succeeds.
    #[arg(short, long)]
    pub verbose: bool,

    /// DANGEROUS, for tests and diagnosis: switch off one confinement layer. The output and
    /// the report say so. Repeatable.
    #[arg(long = "unsafe-disable-layer", value_enum, value_name = "LAYER")]
    pub disabled_layers: Vec<crate::sandbox::Layer>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SafeMode {
    On,
    Off,
}

#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}
