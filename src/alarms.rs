//! Resource alarms, as RabbitMQ's memory and disk alarms: a monitor samples the broker's
//! resident memory and the free space under the data directory, and publishes whether an alarm
//! is on. A store that cannot commit raises the disk alarm too, at once, until a commit
//! succeeds again. Publishing connections stop reading their sockets while it is (TCP pushes back on the
//! publisher) and are told with `connection.blocked`; see `server/flow.rs`.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

/// Why publishers are blocked; the text is what `connection.blocked` carries, as in RabbitMQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alarm {
    Memory,
    Disk,
}

impl Alarm {
    pub fn reason(self) -> &'static str {
        match self {
            Alarm::Memory => "low on memory",
            Alarm::Disk => "low on disk",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AlarmLimits {
    /// Resident memory above this raises the memory alarm.
    pub memory_bytes: u64,
    /// Free disk under the data directory below this raises the disk alarm.
    pub disk_free_bytes: u64,
    pub data_dir: PathBuf,
    pub interval: Duration,
    /// True while the store's commits fail (see `Store::watch_failing`).
    pub store_failing: Option<watch::Receiver<bool>>,
}

/// Starts the monitor on `tasks` until `shutdown` turns true; the receiver holds the active
/// alarm, if any.
pub fn spawn_monitor(
    limits: AlarmLimits,
    mut shutdown: watch::Receiver<bool>,
    tasks: &tokio_util::task::TaskTracker,
) -> watch::Receiver<Option<Alarm>> {
    let (tx, rx) = watch::channel(check(&limits));
    if let Some(alarm) = *rx.borrow() {
        tracing::warn!(
            "{} alarm set at start-up: publishers are blocked",
            alarm.reason()
        );
    }
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(limits.interval);
        let mut store_failing = limits.store_failing.clone();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticker.tick() => {}
                changed = changed(&mut store_failing) => {
                    if changed.is_err() {
                        store_failing = None; // the store is gone: nothing more to hear
                    }
                }
            }
            let now = check(&limits);
            if now != *tx.borrow() {
                match now {
                    Some(alarm) => {
                        tracing::warn!("{} alarm set: blocking publishers", alarm.reason())
                    }
                    None => tracing::info!("resource alarm cleared: unblocking publishers"),
                }
                if tx.send(now).is_err() {
                    return; // every connection and the broker are gone
                }
            }
        }
    });
    rx
}

/// Waits for the store's failing flag to change; never returns without one.
async fn changed(
    store_failing: &mut Option<watch::Receiver<bool>>,
) -> Result<(), watch::error::RecvError> {
    match store_failing {
        Some(rx) => rx.changed().await,
        None => std::future::pending().await,
    }
}

fn check(limits: &AlarmLimits) -> Option<Alarm> {
    if resident_memory().is_some_and(|rss| rss > limits.memory_bytes) {
        return Some(Alarm::Memory);
    }
    if limits.store_failing.as_ref().is_some_and(|rx| *rx.borrow()) {
        return Some(Alarm::Disk);
    }
    if disk_free(&limits.data_dir).is_some_and(|free| free < limits.disk_free_bytes) {
        return Some(Alarm::Disk);
    }
    None
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

/// This process's resident set size, from /proc/self/statm.
pub fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Open file descriptors of this process, and the limit on them.
pub fn open_descriptors() -> (u64, u64) {
    let used = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let total = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        0
    };
    (used, total)
}

/// Total RAM, from /proc/meminfo.
pub fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes available to unprivileged users on the filesystem holding `dir`.
pub fn disk_free(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a properly sized out-parameter.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_plausible() {
        let rss = resident_memory().unwrap();
        assert!(rss > 100_000 && rss < total_memory().unwrap());
        assert!(disk_free(std::path::Path::new("/")).unwrap() > 0);
    }

    #[test]
    fn limits_decide_the_alarm() {
        let limits = |memory_bytes, disk_free_bytes| AlarmLimits {
            memory_bytes,
            disk_free_bytes,
            data_dir: "/".into(),
            interval: Duration::from_millis(100),
            store_failing: None,
        };
        assert_eq!(check(&limits(u64::MAX, 0)), None);
        assert_eq!(check(&limits(1, 0)), Some(Alarm::Memory));
        assert_eq!(check(&limits(u64::MAX, u64::MAX)), Some(Alarm::Disk));
    }

    #[test]
    fn a_failing_store_raises_the_disk_alarm_until_it_commits_again() {
        let (failing, rx) = watch::channel(false);
        let limits = AlarmLimits {
            memory_bytes: u64::MAX,
            disk_free_bytes: 0,
            data_dir: "/".into(),
            interval: Duration::from_millis(100),
            store_failing: Some(rx),
        };
        assert_eq!(check(&limits), None);
        failing.send_replace(true);
        assert_eq!(check(&limits), Some(Alarm::Disk));
        failing.send_replace(false);
        assert_eq!(check(&limits), None);
    }
}
