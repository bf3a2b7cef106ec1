//! The local stack's Lambda processes as the kernel sees them (`/proc`): which deployed function
//! a process runs, which of them are running ffmpeg right now, and killing one the hard way
//! (SIGKILL), as an out-of-memory kill or a host failure would. Used by the crash tests and by
//! the load test's concurrency count. Linux only, like the emulator's process model.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A process of a deployed function (the emulator starts one `bootstrap` per execution
/// environment, with the function's name in its environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionProcess {
    pub pid: i32,
    pub function: String,
}

/// An ffmpeg child of a function process, and how long it has been running.
#[derive(Debug, Clone)]
pub struct BusyFunction {
    pub process: FunctionProcess,
    pub ffmpeg_pid: i32,
    pub ffmpeg_age: Duration,
}

/// The function processes of the stack at `endpoint` (their `AWS_ENDPOINT_URL`), so that other
/// local stacks on the same machine are left alone, by function name. Their children (ffmpeg,
/// ffprobe) inherit the same environment and are left out: one process per environment.
pub fn function_processes(endpoint: &str) -> Vec<FunctionProcess> {
    let all: Vec<(FunctionProcess, i32)> = pids()
        .filter_map(|pid| {
            let environment = environment_of(pid)?;
            if environment.get("AWS_ENDPOINT_URL").map(String::as_str) != Some(endpoint) {
                return None;
            }
            let function = environment.get("AWS_LAMBDA_FUNCTION_NAME")?.clone();
            let (parent, _) = parent_and_start_of(pid)?;
            Some((FunctionProcess { pid, function }, parent))
        })
        .collect();
    let pids: std::collections::HashSet<i32> = all.iter().map(|(p, _)| p.pid).collect();
    all.into_iter()
        .filter(|(_, parent)| !pids.contains(parent))
        .map(|(process, _)| process)
        .collect()
}

/// Function processes (of `functions`, on the stack at `endpoint`) with an ffmpeg child.
pub fn busy_with_ffmpeg(endpoint: &str, functions: &[&str]) -> Vec<BusyFunction> {
    let mut parents: HashMap<i32, FunctionProcess> = function_processes(endpoint)
        .into_iter()
        .filter(|p| functions.contains(&p.function.as_str()))
        .map(|p| (p.pid, p))
        .collect();
    let uptime = uptime();
    let ticks = clock_ticks_per_second();
    let mut busy = Vec::new();
    for pid in pids() {
        if comm_of(pid).as_deref() != Some("ffmpeg") {
            continue;
        }
        let Some((parent, started_ticks)) = parent_and_start_of(pid) else {
            continue;
        };
        if let Some(process) = parents.remove(&parent) {
            let started = Duration::from_secs_f64(started_ticks as f64 / ticks);
            busy.push(BusyFunction {
                process,
                ffmpeg_pid: pid,
                ffmpeg_age: uptime.saturating_sub(started),
            });
        }
    }
    busy
}

/// SIGKILL: no handler runs, nothing is flushed; the process is simply gone.
pub fn kill_hard(pid: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether `pid` is still a live process (not gone, not a zombie).
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).and_then(|f| f.first().copied()) != Some("Z"),
        Err(_) => false,
    }
}

fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

fn environment_of(pid: i32) -> Option<HashMap<String, String>> {
    let raw = std::fs::read(Path::new("/proc").join(pid.to_string()).join("environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter_map(|entry| {
                let text = std::str::from_utf8(entry).ok()?;
                let (name, value) = text.split_once('=')?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect(),
    )
}

fn comm_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces and parens):
/// state, ppid, … (so field N of proc(5) is at index N - 3).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().collect())
}

fn parent_and_start_of(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat)?;
    // proc(5): (4) ppid, (22) starttime in clock ticks since boot.
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

fn uptime() -> Duration {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or_default()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_names_with_spaces_and_parens() {
        let stat = "1234 (my (odd) name) S 99 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000";
        let fields = stat_fields(stat).unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[1], "99");
        assert_eq!(fields[19], "4242");
    }

    #[test]
    fn this_process_is_alive_and_a_child_it_kills_is_not() {
        assert!(is_alive(std::process::id() as i32));
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        kill_hard(pid).unwrap();
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }
}
