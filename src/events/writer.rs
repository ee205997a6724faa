//! Group commit: many concurrent requests, one insert. Handlers hand their events to the writer
//! tasks and wait; a writer takes everything queued (up to `max_batch` events, lingering up to
//! `max_wait_ms` for more), stores it with one statement, and only then answers each request.
//! With `writers` above 1, the next batch is gathered and sent while one is committing.
//! An event is therefore acknowledged only once it is committed, and durability costs one
//! commit per batch rather than one per request.
//!
//! The queue is bounded in events (`queue_capacity`): when the database falls behind, new
//! requests are refused at once (the handler answers 503 with `Retry-After`) instead of
//! growing memory.
//!
//! When the database cannot be reached (stopped, restarting), the failing batch and everything
//! queued behind it are answered "unavailable" at once, and for `retry_after_secs` new requests
//! are refused without queueing: clients learn of an outage within the pool's acquire timeout
//! rather than waiting in line behind batches that each wait for it. The next batch after that
//! is the probe: the service recovers on its own once the database answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::NewEvent;
use super::sink::SubmitError;
use crate::settings::EventSettings;
use crate::store::events;

/// One request's events and where to send the outcome.
struct Unit {
    events: Vec<NewEvent>,
    ack: oneshot::Sender<Result<(), SubmitError>>,
    /// Returned to the queue's budget when the unit is done with.
    _permit: OwnedSemaphorePermit,
}

/// The handle handlers use; cheap to clone.
#[derive(Clone)]
pub struct EventWriter {
    sender: mpsc::UnboundedSender<Unit>,
    budget: Arc<Semaphore>,
    capacity: usize,
    /// Seconds a refused client is told to wait.
    pub retry_after_secs: u64,
    outage: Arc<Outage>,
}

/// Whether the database was just found unreachable: until when new requests are refused
/// without queueing.
struct Outage {
    epoch: Instant,
    /// Milliseconds after `epoch` until which requests are refused; 0 when none.
    until_ms: AtomicU64,
    hold: Duration,
}

impl Outage {
    fn declare(&self) {
        let until = self.epoch.elapsed() + self.hold;
        self.until_ms
            .store(until.as_millis() as u64, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.until_ms.store(0, Ordering::Relaxed);
    }

    fn ongoing(&self) -> bool {
        self.epoch.elapsed().as_millis() < u128::from(self.until_ms.load(Ordering::Relaxed))
    }
}

/// The writer tasks, for shutdown.
pub struct WriterTask {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl WriterTask {
    /// Stops taking events, stores and acknowledges what is queued, and waits for that.
    pub async fn drain(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "an event writer stopped abnormally");
            }
        }
    }
}

impl EventWriter {
    /// Starts the writer tasks on `db`.
    pub fn start(db: DatabaseConnection, settings: &EventSettings) -> (EventWriter, WriterTask) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            max_batch: settings.max_batch,
            max_wait: Duration::from_millis(settings.max_wait_ms),
        };
        let receiver = Arc::new(Mutex::new(receiver));
        let outage = Arc::new(Outage {
            epoch: Instant::now(),
            until_ms: AtomicU64::new(0),
            hold: Duration::from_secs(settings.retry_after_secs),
        });
        let tasks = (0..settings.writers)
            .map(|_| {
                tokio::spawn(run(
                    db.clone(),
                    receiver.clone(),
                    stopped.clone(),
                    limits,
                    outage.clone(),
                ))
            })
            .collect();
        let writer = EventWriter {
            sender,
            budget: Arc::new(Semaphore::new(settings.queue_capacity)),
            capacity: settings.queue_capacity,
            retry_after_secs: settings.retry_after_secs,
            outage,
        };
        (writer, WriterTask { stop, tasks })
    }

    /// Queues `events` (one request's) and waits until they are committed.
    /// Refused at once when the queue has no room for all of them.
    pub async fn submit(&self, events: Vec<NewEvent>) -> Result<(), SubmitError> {
        if events.is_empty() {
            return Ok(());
        }
        if events.len() > self.capacity {
            return Err(SubmitError::TooMany(self.capacity));
        }
        if self.outage.ongoing() {
            metrics::counter!("events_refused_total", "reason" => "unavailable").increment(1);
            return Err(SubmitError::Unavailable);
        }
        let permit = match self
            .budget
            .clone()
            .try_acquire_many_owned(events.len() as u32)
        {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                metrics::counter!("events_refused_total", "reason" => "busy").increment(1);
                return Err(SubmitError::Busy);
            }
            Err(tokio::sync::TryAcquireError::Closed) => return Err(SubmitError::ShuttingDown),
        };
        let (ack, answer) = oneshot::channel();
        let unit = Unit {
            events,
            ack,
            _permit: permit,
        };
        if self.sender.send(unit).is_err() {
            return Err(SubmitError::ShuttingDown);
        }
        // The writer always answers; a dropped sender means it stopped without storing.
        answer.await.unwrap_or(Err(SubmitError::ShuttingDown))
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_batch: usize,
    max_wait: Duration,
}

async fn run(
    db: DatabaseConnection,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Unit>>>,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
    outage: Arc<Outage>,
) {
    let mut stopping = false;
    loop {
        // One writer gathers at a time; the lock is released before the batch is written.
        let batch = {
            let mut receiver = receiver.lock().await;
            stopping = stopping || *stop.borrow();
            let first = if stopping {
                // No new units; what is queued is still received, then `None`.
                receiver.close();
                receiver.recv().await
            } else {
                tokio::select! {
                    unit = receiver.recv() => unit,
                    // Told to stop, or the handle is gone (nothing can stop us later).
                    _ = stop.changed() => {
                        stopping = true;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let mut count = first.events.len();
            let mut batch = vec![first];
            gather(&mut receiver, &mut batch, &mut count, limits).await;
            batch
        };
        if write(&db, batch).await == Stored::Unavailable {
            outage.declare();
            // What is queued now would wait for the same unreachable database: answer it at
            // once. (Requests arriving from now on are refused before queueing.)
            let mut receiver = receiver.lock().await;
            while let Ok(unit) = receiver.try_recv() {
                let _ = unit.ack.send(Err(SubmitError::Unavailable));
            }
        } else {
            outage.clear();
        }
    }
    tracing::debug!("event writer stopped: queue drained");
}

/// Adds what is already queued, then lingers up to `max_wait` for more, until `max_batch`.
async fn gather(
    receiver: &mut mpsc::UnboundedReceiver<Unit>,
    batch: &mut Vec<Unit>,
    count: &mut usize,
    limits: Limits,
) {
    while *count < limits.max_batch {
        match receiver.try_recv() {
            Ok(unit) => {
                *count += unit.events.len();
                batch.push(unit);
            }
            Err(_) => break,
        }
    }
    if limits.max_wait.is_zero() || *count >= limits.max_batch {
        return;
    }
    let deadline = tokio::time::Instant::now() + limits.max_wait;
    while *count < limits.max_batch {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(unit)) => {
                *count += unit.events.len();
                batch.push(unit);
            }
            Ok(None) | Err(_) => break,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Stored {
    Yes,
    Failed,
    Unavailable,
}

/// Stores one batch and answers every request in it.
async fn write(db: &DatabaseConnection, batch: Vec<Unit>) -> Stored {
    // A client that hung up gets no answer and will retry: storing its event would only make a
    // duplicate.
    let batch: Vec<Unit> = batch.into_iter().filter(|u| !u.ack.is_closed()).collect();
    let rows: Vec<&NewEvent> = batch.iter().flat_map(|u| u.events.iter()).collect();
    if rows.is_empty() {
        return Stored::Yes;
    }
    let stored = events::insert(db, &rows).await;
    let size = rows.len();
    drop(rows);
    match stored {
        Ok(_) => {
            metrics::counter!("events_stored_total").increment(size as u64);
            metrics::histogram!("events_batch_size").record(size as f64);
            for unit in batch {
                let _ = unit.ack.send(Ok(()));
            }
            Stored::Yes
        }
        Err(error) => {
            metrics::counter!("events_failed_total").increment(size as u64);
            tracing::error!(error = %crate::db::brief(&error), events = size, "storing events failed");
            let (answer, stored) = if crate::db::is_unavailable(&error) {
                (SubmitError::Unavailable, Stored::Unavailable)
            } else {
                (SubmitError::Failed, Stored::Failed)
            };
            for unit in batch {
                let _ = unit.ack.send(Err(answer));
            }
            stored
        }
    }
}
