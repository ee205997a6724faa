//! Fires each enabled provider's `schedule` inside the server. A tick only asks the runner;
//! the runner's lease decides whether this replica runs it.

use chrono::{SubsecRound, Utc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::runner::Runner;

/// Starts a scheduler with one job per scheduled, enabled provider.
pub async fn start(runner: Runner) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    for provider in runner.providers() {
        let (Some(schedule), true) = (provider.def.schedule.clone(), provider.def.enabled) else {
            continue;
        };
        let name = provider.name.clone();
        let runner = runner.clone();
        let job = Job::new_async(schedule.as_str(), move |_id, _scheduler| {
            let runner = runner.clone();
            let name = name.clone();
            Box::pin(async move {
                // Replicas fire the same cron second; truncating names the tick they compete for.
                let tick = Utc::now().trunc_subsecs(0);
                match runner.tick(&name, tick).await {
                    Ok(Some(run_id)) => {
                        tracing::info!(provider = %name, run_id, "scheduled run started")
                    }
                    Ok(None) => {
                        tracing::debug!(provider = %name, "tick skipped: running, or taken by another replica")
                    }
                    Err(error) => {
                        tracing::warn!(provider = %name, %error, "scheduled run could not start")
                    }
                }
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    Ok(scheduler)
}
