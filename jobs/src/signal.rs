//! Stopping on request: what the API and the workers both wait for.

/// Resolves on SIGTERM (how service managers and container runtimes stop a process) or
/// Ctrl-C. Fails only if the signal handlers cannot be installed.
pub async fn shutdown_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
