//! Fires each enabled provider's `schedule` inside the server. A tick only asks the runner;
//! the runner's lease decides whether this replica runs it. A reload of the providers brings
//! the jobs in line with the new definitions ([`Schedules::sync`]).

use std::collections::HashMap;

use chrono::{SubsecRound, Utc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use crate::runner::Runner;

/// The running scheduler and its job per scheduled provider.
pub struct Schedules {
    scheduler: JobScheduler,
    /// Provider name → its job and the cron expression the job fires on.
    jobs: HashMap<String, (Uuid, String)>,
}

/// Starts a scheduler with one job per scheduled, enabled provider.
pub async fn start(runner: Runner) -> Result<Schedules, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    let mut schedules = Schedules {
        scheduler,
        jobs: HashMap::new(),
    };
    for provider in runner.providers() {
        let (Some(schedule), true) = (provider.def.schedule.clone(), provider.def.enabled) else {
            continue;
        };
        schedules.add(&runner, &provider.name, &schedule).await?;
    }
    schedules.scheduler.start().await?;
    Ok(schedules)
}

impl Schedules {
    /// Adds, replaces and removes jobs so that each scheduled, enabled provider the runner
    /// holds now has one job on its current schedule. A job that cannot be changed is logged
    /// and left as it was.
    pub async fn sync(&mut self, runner: &Runner) {
        let wanted: HashMap<String, String> = runner
            .providers()
            .into_iter()
            .filter(|p| p.def.enabled)
            .filter_map(|p| Some((p.name, p.def.schedule?)))
            .collect();
        let stale: Vec<String> = self
            .jobs
            .iter()
            .filter(|(name, (_, schedule))| wanted.get(*name) != Some(schedule))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            let Some((id, _)) = self.jobs.get(&name).cloned() else {
                continue;
            };
            match self.scheduler.remove(&id).await {
                Ok(()) => {
                    self.jobs.remove(&name);
                    tracing::info!(provider = %name, "schedule removed");
                }
                Err(error) => {
                    tracing::warn!(provider = %name, %error, "could not remove the schedule")
                }
            }
        }
        for (name, schedule) in wanted {
            if self.jobs.contains_key(&name) {
                continue;
            }
            match self.add(runner, &name, &schedule).await {
                Ok(()) => tracing::info!(provider = %name, %schedule, "schedule registered"),
                Err(error) => {
                    tracing::warn!(provider = %name, %error, "could not register the schedule")
                }
            }
        }
    }

    /// Stops firing; ticks under way finish.
    pub async fn shutdown(&mut self) -> Result<(), JobSchedulerError> {
        self.scheduler.shutdown().await
    }

    async fn add(
        &mut self,
        runner: &Runner,
        name: &str,
        schedule: &str,
    ) -> Result<(), JobSchedulerError> {
        let job = {
            // The runner holds its jobs: a job holding the runner would keep both (and the
            // database pool) alive for good.
            let runner = runner.downgrade();
            let name = name.to_string();
            Job::new_async(schedule, move |_id, _scheduler| {
                let runner = runner.upgrade();
                let name = name.clone();
                Box::pin(async move {
                    let Some(runner) = runner else {
                        return;
                    };
                    // Replicas fire the same cron second; truncating names the tick they
                    // compete for.
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
            })?
        };
        let id = self.scheduler.add(job).await?;
        self.jobs
            .insert(name.to_string(), (id, schedule.to_string()));
        Ok(())
    }
}
