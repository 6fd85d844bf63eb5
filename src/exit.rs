//! Process exit codes: the contract scripts rely on (documented in `--help` and README).

/// Every way `sandload run` can end. The numbers are part of the public CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// The model loaded (and predicted, when inputs were given).
    Ok,
    /// Bad command line, or an input/model file that cannot be used.
    Usage,
    /// The model raised during load or predict (Keras' message is relayed).
    ModelRaised,
    /// The child broke the policy (seccomp kill) or the broker protocol.
    Violation,
    /// The wall-clock timeout expired; the whole child tree was killed.
    Timeout,
    /// A resource limit was hit (memory, CPU seconds, file size, output bytes).
    ResourceLimit,
    /// A confinement layer could not be applied; nothing was run.
    SandboxSetup,
    /// Interrupted by SIGINT/SIGTERM; the child tree was killed.
    Interrupted,
    /// A bug in sandload itself.
    Internal,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Usage => 2,
            Exit::ModelRaised => 3,
            Exit::Violation => 4,
            Exit::Timeout => 5,
            Exit::ResourceLimit => 6,
            Exit::SandboxSetup => 7,
            Exit::Interrupted => 130,
            Exit::Internal => 70,
        }
    }
}

/// An error that already knows which exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure { exit, message: message.into() }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
}

/// Finds the exit code an error chain carries; anything untyped is an internal error.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.chain().find_map(|e| e.downcast_ref::<Failure>().map(|f| f.exit)).unwrap_or(Exit::Internal)
}
