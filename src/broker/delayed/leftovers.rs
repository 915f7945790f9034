//! What deleted delayed exchanges still hold. RabbitMQ's plugin does nothing to a deleted
//! exchange's delayed messages: each one, when due, is routed by the exchange's name against
//! the bindings that exist then — through an exchange re-declared under that name (so a deploy
//! that deletes and re-creates its topology keeps them), or nowhere. warren does the same: a
//! deleted exchange's schedule stays with its vhost and goes on firing (schedule.rs routes by
//! name), and is dropped once empty. A durable exchange's is remembered in the store
//! (`Definition::DelayedLeftover`) so that a restart finds it.
//!
//! This file owns that list and its store records; the schedules themselves are schedule.rs's.

use std::sync::Arc;

use parking_lot::Mutex;

use super::schedule::{Schedule, ScheduleSpec, Target};
use crate::broker::exchange::Exchange;
use crate::broker::vhost::VHost;
use crate::store::{Definition, Store};

/// A vhost's schedules of deleted delayed exchanges.
#[derive(Default)]
pub struct Leftovers(Mutex<Vec<Leftover>>);

struct Leftover {
    schedule: Arc<Schedule>,
    /// Its store record, for a durable exchange's.
    record: Option<Definition>,
}

fn record(vhost: &str, exchange: &str, schedule_id: u64) -> Definition {
    Definition::DelayedLeftover {
        vhost: vhost.to_string(),
        exchange: exchange.to_string(),
        schedule_id,
    }
}

/// Deletes a leftover's store record (logged if the store refuses: the next start, finding
/// nothing under it, deletes it then).
fn forget(store: &Store, def: &Definition) {
    if let Err(e) = store.delete_definitions(std::slice::from_ref(def)) {
        tracing::error!("cannot delete a stored record of delayed messages: {e}");
    }
}

impl VHost {
    /// A delayed exchange is being deleted: what its schedule holds stays, routed by the
    /// exchange's name when due; an empty schedule is dropped.
    pub(crate) fn leave_schedule(&self, exchange: &Exchange, schedule: &Arc<Schedule>) {
        let held = schedule.leave();
        if held == 0 {
            schedule.delete();
            return;
        }
        let record = match (self.store(), schedule.store_id()) {
            (Some(store), Some(id)) if exchange.options.durable => {
                let def = record(&self.name, &exchange.name, id);
                match store.put_definition(&def) {
                    Ok(()) => Some(def),
                    Err(e) => {
                        tracing::error!(
                            "delayed exchange '{}' deleted: its {held} delayed messages will not survive a restart: {e}",
                            exchange.name
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        tracing::info!(
            vhost = %self.name,
            "delayed exchange '{}' deleted: its {held} delayed messages will be routed by its name when due",
            exchange.name
        );
        self.leftovers.0.lock().push(Leftover {
            schedule: schedule.clone(),
            record,
        });
    }

    /// A kept schedule has routed its last message: it goes, with its store record.
    pub(crate) fn leftover_emptied(&self, schedule: &Schedule) {
        let leftover = {
            let mut list = self.leftovers.0.lock();
            let Some(at) = list
                .iter()
                .position(|l| std::ptr::eq(Arc::as_ptr(&l.schedule), schedule))
            else {
                return;
            };
            list.swap_remove(at)
        };
        if let (Some(store), Some(def)) = (self.store(), &leftover.record) {
            forget(store, def);
        }
        leftover.schedule.delete();
    }

    /// At start: a deleted durable exchange's schedule, with `restored` messages in the store.
    pub(crate) fn restore_leftover(
        &self,
        store: &Arc<Store>,
        exchange: &str,
        schedule_id: u64,
        restored: u64,
    ) {
        let def = record(&self.name, exchange, schedule_id);
        if restored == 0 {
            forget(store, &def);
            return;
        }
        tracing::info!(
            vhost = %self.name,
            "deleted delayed exchange '{exchange}': {restored} delayed messages recovered, to be routed by its name"
        );
        let spec = ScheduleSpec {
            store: Some((store.clone(), schedule_id)),
            durable: true,
            restored,
        };
        let schedule = self.schedule_for(Target::Exchange(Arc::from(exchange)), spec);
        schedule.leave();
        self.leftovers.0.lock().push(Leftover {
            schedule,
            record: Some(def),
        });
    }
}
