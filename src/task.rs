//! Spawned tasks tied to their owner's lifetime.

/// Stops a spawned task when its owner is done with it, however the owner ends (aborted
/// included).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
