//! One module per subcommand, and what they share: runtime start-up, error sentences and
//! the shutdown signal.

pub mod admin;
pub mod bench;
pub mod endpoints;
pub mod ledger;
pub mod listen;
pub mod probe;
pub mod serve;
pub mod trigger;

use std::process::ExitCode;

/// Prints one clear sentence to stderr and returns the exit code.
#[allow(clippy::print_stderr)]
pub fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("finhook: {message}");
    ExitCode::from(code)
}

/// Runs `work` on a multi-threaded Tokio runtime.
pub fn block_on(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => fail(1, format!("could not start the async runtime: {error}")),
    }
}

/// "outer: cause: root cause", so one line says what went wrong and why.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
