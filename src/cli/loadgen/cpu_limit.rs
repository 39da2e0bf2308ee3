//! A CPU budget for one server process of the load generator: a control group of its own whose
//! CFS bandwidth allows `cores` CPU-seconds per second of wall time, as a container's CPU limit
//! gives an instance.
//!
//! Linux's CFS bandwidth control (kernel documentation, `Documentation/scheduler/sched-bwc.rst`):
//! a group runs at most `quota` microseconds in each `period`; cgroup v1 takes them in
//! `cpu.cfs_quota_us` and `cpu.cfs_period_us` of the `cpu` hierarchy, cgroup v2 as
//! "`quota` `period`" in `cpu.max`. A quota under 1 ms is refused.
//!
//! The period here is 10 ms rather than the kernel's default 100 ms: a group that spends its
//! quota early in a period waits for the rest of it, and with 100 ms periods those waits (up to
//! 80 ms each for a fifth of a core) show as the reply latency of a stalled instance rather than
//! as a smaller one. The server joins its group before it starts (`sh` writes its own pid into
//! the group, then runs the server in its place), so every thread it ever starts is in it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The bandwidth period, in microseconds (see the module's note on why 10 ms).
const PERIOD_US: u64 = 10_000;
/// The smallest quota Linux accepts, in microseconds.
const MIN_QUOTA_US: u64 = 1_000;
/// Where Linux mounts the control groups.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Which kind of control group file system holds the cpu controller.
#[derive(Debug, Clone, PartialEq)]
enum Hierarchy {
    /// cgroup v1: the `cpu` hierarchy's directory.
    V1(PathBuf),
    /// cgroup v2: the unified hierarchy's directory (the cpu controller enabled for its children).
    V2(PathBuf),
}

/// One server's control group; removed when dropped (after its process has ended: a group with
/// a process in it cannot be removed, and then stays until the machine restarts).
pub(super) struct CpuGroup {
    dir: PathBuf,
}

impl CpuGroup {
    /// Creates a group allowing `cores` CPU-seconds per second (at least 1 ms per 10 ms period).
    ///
    /// Errors, as text for the operator: no cpu controller under `/sys/fs/cgroup`, or no right
    /// to create a group or set its bandwidth there (root has it).
    pub(super) fn create(cores: f64) -> Result<CpuGroup, String> {
        Self::create_in(&hierarchy(Path::new(CGROUP_ROOT))?, cores)
    }

    fn create_in(hierarchy: &Hierarchy, cores: f64) -> Result<CpuGroup, String> {
        let name = format!("carewell-load-{}", uuid::Uuid::new_v4().simple());
        let quota = quota_us(cores);
        let (dir, settings) = match hierarchy {
            Hierarchy::V1(cpu) => (
                cpu.join(name),
                vec![("cpu.cfs_period_us", PERIOD_US.to_string()), ("cpu.cfs_quota_us", quota.to_string())],
            ),
            Hierarchy::V2(root) => (root.join(name), vec![("cpu.max", format!("{quota} {PERIOD_US}"))]),
        };
        std::fs::create_dir(&dir).map_err(|e| refused(&dir, &e))?;
        let group = CpuGroup { dir };
        for (file, value) in settings {
            let path = group.dir.join(file);
            std::fs::write(&path, value).map_err(|e| refused(&path, &e))?;
        }
        Ok(group)
    }

    /// A command that puts its own process into this group and then runs `program` with the
    /// arguments and environment the caller adds (they go to `program`, which takes the
    /// process's place).
    pub(super) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(r#"echo $$ > "$0" && exec "$@""#).arg(self.dir.join("cgroup.procs")).arg(program);
        cmd
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The quota in microseconds per [`PERIOD_US`] for `cores` (at least [`MIN_QUOTA_US`]).
fn quota_us(cores: f64) -> u64 {
    ((cores * PERIOD_US as f64).round() as u64).max(MIN_QUOTA_US)
}

/// Finds the cpu controller under `root`: cgroup v1's `cpu` hierarchy, or cgroup v2's unified
/// one (enabling the controller for its children when it is not yet).
fn hierarchy(root: &Path) -> Result<Hierarchy, String> {
    let v1 = root.join("cpu");
    if v1.join("cpu.cfs_quota_us").exists() {
        return Ok(Hierarchy::V1(v1));
    }
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "cpu") {
        let subtree = root.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&subtree).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "cpu") {
            std::fs::write(&subtree, "+cpu").map_err(|e| refused(&subtree, &e))?;
        }
        return Ok(Hierarchy::V2(root.to_path_buf()));
    }
    Err(format!(
        "no cpu controller under {}: --server-cpu-limit needs Linux control groups (v1 or v2) with the cpu \
         controller; run without it",
        root.display()
    ))
}

fn refused(path: &Path, e: &std::io::Error) -> String {
    format!(
        "cannot write {}: {e}; --server-cpu-limit needs the right to create control groups (as root has); run \
         without it",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("carewell-cgroup-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[test]
    fn the_quota_is_the_cores_share_of_the_period_and_never_under_the_kernels_minimum() {
        assert_eq!(quota_us(0.2), 2_000);
        assert_eq!(quota_us(1.5), 15_000);
        assert_eq!(quota_us(0.01), MIN_QUOTA_US);
    }

    #[test]
    fn a_v1_group_gets_the_period_and_the_quota_and_a_v2_group_its_cpu_max() {
        let root = scratch();
        std::fs::create_dir(root.join("cpu")).expect("cpu hierarchy");
        std::fs::write(root.join("cpu").join("cpu.cfs_quota_us"), "-1").expect("root quota");
        let found = hierarchy(&root).expect("v1 found");
        assert_eq!(found, Hierarchy::V1(root.join("cpu")));
        let group = CpuGroup::create_in(&found, 0.25).expect("group");
        let read = |f: &str| std::fs::read_to_string(group.dir.join(f)).expect("setting written");
        assert_eq!((read("cpu.cfs_period_us"), read("cpu.cfs_quota_us")), ("10000".into(), "2500".into()));
        let command = group.command(Path::new("/bin/server"));
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[2], group.dir.join("cgroup.procs").to_string_lossy());
        assert_eq!(args[3], "/bin/server");

        let unified = scratch();
        std::fs::write(unified.join("cgroup.controllers"), "cpuset cpu io memory pids").expect("controllers");
        std::fs::write(unified.join("cgroup.subtree_control"), "memory").expect("subtree");
        let found = hierarchy(&unified).expect("v2 found");
        assert_eq!(std::fs::read_to_string(unified.join("cgroup.subtree_control")).expect("subtree"), "+cpu");
        let group = CpuGroup::create_in(&found, 0.5).expect("group");
        assert_eq!(std::fs::read_to_string(group.dir.join("cpu.max")).expect("cpu.max"), "5000 10000");
        let _ = std::fs::remove_dir_all(root);
        let _ = std::fs::remove_dir_all(unified);
    }

    #[test]
    fn the_command_writes_its_pid_into_the_group_and_then_runs_the_program_in_its_place() {
        let root = scratch();
        let group = CpuGroup::create_in(&Hierarchy::V1(root.clone()), 0.5).expect("group");
        let out = group.command(Path::new("/bin/echo")).arg("listening").output().expect("runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "listening\n");
        let pid = std::fs::read_to_string(group.dir.join("cgroup.procs")).expect("pid written");
        assert!(pid.trim().parse::<u32>().is_ok(), "{pid:?}");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn without_a_cpu_controller_the_error_says_to_run_without_the_limit() {
        let root = scratch();
        let err = hierarchy(&root).expect_err("nothing mounted");
        assert!(err.contains("no cpu controller") && err.contains("run without it"), "{err}");
        let _ = std::fs::remove_dir_all(root);
    }
}
