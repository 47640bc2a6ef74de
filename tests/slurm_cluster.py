"""A throw-away, single-node Slurm cluster for tests (and for trying the Slurm profile by hand).

`SlurmCluster` starts, from the Debian packages that `.ci/install-slurm.sh` installs, the same
daemons a real cluster runs -- munged (authentication), MariaDB and slurmdbd (accounting, so that
`sacct`, the executor plugin's status query, works), slurmctld (controller) and slurmd (compute
node) -- with fake GPUs: generic resources backed by character devices made with `mknod`, so that
a job asking for `--gpus=1` is scheduled and sees `CUDA_VISIBLE_DEVICES`. Configuration, state,
sockets and logs all live in one temporary directory; nothing under /etc, /run or /var is touched.
Every daemon runs in the foreground as a child of this process and is stopped by its PID.

Use it from pytest through the session fixture `slurm_cluster` (tests skip with the reason when the
machine cannot host Slurm), or by hand:

    python tests/slurm_cluster.py        # starts a cluster, prints how to use it, Ctrl-C stops it

Client commands (sbatch, squeue, sacct, snakemake --executor slurm) find the cluster through the
environment in `SlurmCluster.env`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Programs the cluster needs; `.ci/install-slurm.sh` installs all of them.
REQUIRED_PROGRAMS = (
    "munged",
    "mariadb-install-db",
    "mariadbd",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sacct",
    "sacctmgr",
    "sinfo",
    "scontrol",
    "scancel",
)

CLUSTER_NAME = "adamnoise"
PARTITION = "debug"
GPU_TYPE = "fake"


def cannot_host_slurm() -> str | None:
    """Why this machine cannot run the test cluster, or None if it can."""
    if sys.platform != "linux":
        return "the Slurm test cluster needs Linux"
    if os.geteuid() != 0:
        return "the Slurm test cluster needs root (daemons, mknod)"
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if missing:
        return (
            f"Slurm packages not installed (missing {', '.join(missing)}):"
            " run `bash .ci/install-slurm.sh`"
        )
    return None


def _free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _node_hardware() -> dict[str, str]:
    """The node line fields `slurmd -C` detects (CPUs, sockets, cores, threads, RealMemory)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    first_line = out.splitlines()[0]
    return dict(field.split("=", 1) for field in first_line.split())


def _terminate_with_parent() -> None:
    """In a daemon's child process before exec: ask the kernel for SIGTERM when the process that
    started it dies, so that a killed test run (SIGKILL, CI timeout) leaves no daemon behind."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class SlurmStartError(RuntimeError):
    """A daemon did not come up; the message carries the tail of its log."""


class SlurmCluster:
    """One slurmctld + one slurmd (+ slurmdbd, MariaDB, munged) with all files under `root`."""

    def __init__(self, root: Path | None = None, n_gpus: int = 2, keep_root: bool = False):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="adamnoise-slurm-"))
        self.keep_root = keep_root or root is not None
        self.n_gpus = n_gpus
        self.node_name = socket.gethostname().split(".")[0]
        self.conf_dir = self.root / "etc"
        self.log_dir = self.root / "log"
        self.bin_dir = self.root / "bin"
        self.slurm_conf = self.conf_dir / "slurm.conf"
        self.munge_socket = self.root / "run" / "munge.socket"
        self.ports = {name: _free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
        self._processes: list[tuple[str, subprocess.Popen]] = []
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ environment for clients

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus what Slurm client commands need to reach this cluster."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.slurm_conf)
        # The executor plugin's job step drops SLURM_CONF before it calls `srun` inside the
        # job (it keeps only allocation identity variables), so that inner srun would read the
        # compiled-in /etc/slurm/slurm.conf. A real cluster keeps its config there; this one
        # lives in a temp dir, so srun is reached through a wrapper that restores SLURM_CONF.
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        # Never inherit an allocation from an enclosing job.
        for key in [k for k in env if k.startswith(("SLURM_JOB", "SBATCH_", "SRUN_"))]:
            del env[key]
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run a Slurm client command against this cluster; returns stdout."""
        proc = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, proc.stderr)
        return proc.stdout

    # ------------------------------------------------------------------ start / stop

    def start(self, timeout: float = 90) -> SlurmCluster:
        """Write the configuration and start all daemons; returns once the node is idle."""
        t0 = time.perf_counter()
        try:
            reason = cannot_host_slurm()
            if reason:
                raise SlurmStartError(reason)
            self._write_files()
            self._start_munge(timeout)
            self._start_mariadb(timeout)
            self._start_slurmdbd(timeout)
            self._start_slurmctld(timeout)
            self._start_slurmd(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0
        return self

    def stop(self, timeout: float = 20) -> None:
        """Cancel remaining jobs, then stop the daemons this object started, newest first."""
        if any(name == "slurmctld" and p.poll() is None for name, p in self._processes):
            # Job steps outlive slurmd (slurmstepd is re-parented), so end them through Slurm.
            self.run("scancel", "--full", f"--partition={PARTITION}", check=False)
            with contextlib.suppress(SlurmStartError):  # stop the daemons regardless
                self._wait(lambda: not self.run("squeue", "-h", check=False).strip(), 15, "scancel")
        for _name, proc in reversed(self._processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._processes.clear()
        if not self.keep_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ queries used by tests

    def sacct(self, *job_ids: str | int, fields: str = "JobID,JobName,State,ExitCode") -> list:
        """Accounting records (one dict per job, steps excluded) as slurmdbd reports them."""
        names = fields.split(",")
        out = self.run(
            "sacct", "-X", "--parsable2", "--noheader", f"--format={fields}",
            *(["--jobs=" + ",".join(map(str, job_ids))] if job_ids else ["--allusers"]),
        )  # fmt: skip
        return [dict(zip(names, line.split("|"), strict=True)) for line in out.splitlines()]

    def log_tail(self, name: str, lines: int = 30, suffix: str = ".log") -> str:
        """The last lines of a daemon's log (`name` = munged, mariadb, slurmdbd, ...)."""
        path = self.log_dir / f"{name}{suffix}"
        if not path.exists():
            return f"(no {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------------ internals

    def _write_files(self) -> None:
        for sub in ("etc", "log", "run", "bin", "dev", "munge", "mysql", "ctld", "slurmd"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # munged wants its key directory private, and its socket directory reachable by all.
        (self.root / "munge").chmod(0o700)
        (self.root / "run").chmod(0o755)
        self.root.chmod(0o755)

        hw = _node_hardware()
        # Below the detected memory: a node that reports less than slurm.conf claims is drained.
        real_memory = int(int(hw["RealMemory"]) * 0.9)
        cpus = int(hw["CPUs"])
        for i in range(self.n_gpus):
            device = self.root / "dev" / f"fakegpu{i}"
            # Same major/minor as /dev/null: slurmd only checks that the device file exists.
            os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))

        node = (
            f"NodeName={self.node_name} NodeAddr=127.0.0.1 CPUs={cpus}"
            f" Boards={hw['Boards']} SocketsPerBoard={hw['SocketsPerBoard']}"
            f" CoresPerSocket={hw['CoresPerSocket']} ThreadsPerCore={hw['ThreadsPerCore']}"
            f" RealMemory={real_memory} Gres=gpu:{GPU_TYPE}:{self.n_gpus} State=UNKNOWN"
        )
        auth = f"AuthInfo=socket={self.munge_socket}"
        self.slurm_conf.write_text(
            "\n".join(
                [
                    f"ClusterName={CLUSTER_NAME}",
                    f"SlurmctldHost={self.node_name}(127.0.0.1)",
                    f"SlurmctldPort={self.ports['slurmctld']}",
                    f"SlurmdPort={self.ports['slurmd']}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    auth,
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={self.root / 'ctld'}",
                    f"SlurmdSpoolDir={self.root / 'slurmd'}",
                    f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
                    # No cgroups here (containers, no systemd): track processes through /proc.
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/linux",
                    "MpiDefault=none",
                    "MailProg=/bin/true",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    # Without a default, a job that names no memory is given the whole node.
                    "DefMemPerCPU=1024",
                    # Reject at submission what can never run, instead of pending forever.
                    "EnforcePartLimits=ALL",
                    "ReturnToService=2",
                    "MinJobAge=300",
                    # scancel: SIGTERM, then SIGKILL this many seconds later (default 30).
                    "KillWait=5",
                    "InactiveLimit=0",
                    "GresTypes=gpu",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=127.0.0.1",
                    f"AccountingStoragePort={self.ports['slurmdbd']}",
                    # For the slurmdbd connection, this names the munge socket (not AuthInfo).
                    f"AccountingStoragePass={self.munge_socket}",
                    "AccountingStorageTRES=gres/gpu",
                    "JobCompType=jobcomp/none",
                    node,
                    f"PartitionName={PARTITION} Nodes={self.node_name} Default=YES"
                    " MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (self.conf_dir / "gres.conf").write_text(
            "".join(
                f"NodeName={self.node_name} Name=gpu Type={GPU_TYPE}"
                f" File={self.root / 'dev' / f'fakegpu{i}'}\n"
                for i in range(self.n_gpus)
            )
        )
        self._db_password = secrets.token_hex(12)
        dbd_conf = self.conf_dir / "slurmdbd.conf"
        dbd_conf.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    auth,
                    "DbdAddr=127.0.0.1",
                    f"DbdHost={self.node_name}",
                    f"DbdPort={self.ports['slurmdbd']}",
                    "SlurmUser=root",
                    f"LogFile={self.log_dir / 'slurmdbd.log'}",
                    f"PidFile={self.root / 'run' / 'slurmdbd.pid'}",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.ports['mariadb']}",
                    "StorageUser=slurm",
                    f"StoragePass={self._db_password}",
                    "StorageLoc=slurm_acct_db",
                    "",
                ]
            )
        )
        dbd_conf.chmod(0o600)  # slurmdbd refuses a readable config (it holds the DB password)

        srun_wrapper = self.bin_dir / "srun"
        srun_wrapper.write_text(
            "#!/bin/sh\n"
            "# Restores the test cluster's config for srun (see SlurmCluster.env).\n"
            f'SLURM_CONF="{self.slurm_conf}" exec {shutil.which("srun")} "$@"\n'
        )
        srun_wrapper.chmod(0o755)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.stdout", "ab")  # noqa: SIM115 (lives as long as proc)
        proc = subprocess.Popen(
            args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the daemons
            preexec_fn=_terminate_with_parent,
        )
        log.close()
        self._processes.append((name, proc))
        return proc

    def _wait(
        self, ready: Callable[[], bool], timeout: float, what: str, proc=None, log: str = ""
    ) -> None:
        """Poll `ready` until it holds; on timeout (or if `proc` dies) raise with the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
        message = f"{what}: not ready after {timeout:.0f} s"
        if proc is not None and proc.poll() is not None:
            message = f"{what}: exited with status {proc.returncode}"
        if log:
            message += f"\n--- {log}.log ---\n{self.log_tail(log)}"
            message += f"\n--- {log}.stdout ---\n{self.log_tail(log, suffix='.stdout')}"
        raise SlurmStartError(message)

    def _start_munge(self, timeout: float) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        proc = self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.root / 'run' / 'munged.pid'}",
                f"--log-file={self.log_dir / 'munged.log'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
            ],
        )
        self._wait(self.munge_socket.exists, timeout, "munged", proc, "munged")

    def _start_mariadb(self, timeout: float) -> None:
        datadir = self.root / "mysql"
        sock = self.root / "run" / "mysqld.sock"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        proc = self._spawn(
            "mariadb",
            [
                "mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                f"--socket={sock}",
                f"--port={self.ports['mariadb']}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--pid-file={self.root / 'run' / 'mariadb.pid'}",
                f"--log-error={self.log_dir / 'mariadb.log'}",
                # A test database: small, and durability traded for speed.
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-lock-wait-timeout=900",
            ],
        )
        self._wait(lambda: _port_open(self.ports["mariadb"]), timeout, "mariadbd", proc, "mariadb")
        sql = (
            "CREATE DATABASE slurm_acct_db;"
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self._db_password}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e", sql],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def _start_slurmdbd(self, timeout: float) -> None:
        proc = self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait(
            lambda: _port_open(self.ports["slurmdbd"]), timeout, "slurmdbd", proc, "slurmdbd"
        )

    def _start_slurmctld(self, timeout: float) -> None:
        proc = self._spawn("slurmctld", ["slurmctld", "-D", "-i"])

        def controller_up() -> bool:
            return "UP" in self.run("scontrol", "ping", check=False, timeout=5)

        self._wait(controller_up, timeout, "slurmctld", proc, "slurmctld")

    def _start_slurmd(self, timeout: float) -> None:
        proc = self._spawn("slurmd", ["slurmd", "-D", "-N", self.node_name])

        def node_idle() -> bool:
            return self.run("sinfo", "-h", "-o", "%T", check=False).strip() == "idle"

        self._wait(node_idle, timeout, "slurmd", proc, "slurmd")

        # The cluster registers itself in slurmdbd a moment after slurmctld starts; until then
        # sacct answers with an error, which the executor plugin would count as a failed query.
        def accounting_ready() -> bool:
            return CLUSTER_NAME in self.run(
                "sacctmgr", "-n", "-P", "list", "cluster", "format=cluster", check=False
            )

        self._wait(accounting_ready, timeout, "cluster registration", log="slurmdbd")


def slurm_cluster_fixture() -> Iterator[SlurmCluster]:
    """Body of the pytest session fixture: one cluster for all Slurm tests, or a skip."""
    import pytest

    reason = cannot_host_slurm()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster()
    try:
        cluster.start()
    except SlurmStartError as exc:
        pytest.fail(f"the Slurm test cluster did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def _main() -> None:
    reason = cannot_host_slurm()
    if reason:
        sys.exit(reason)
    with SlurmCluster() as cluster:
        print(f"Slurm test cluster up in {cluster.startup_seconds:.1f} s, files in {cluster.root}")
        print("In another shell:")
        print(f"  export SLURM_CONF={cluster.slurm_conf} PATH={cluster.bin_dir}:$PATH")
        print("  sinfo; sbatch --gpus=1 --wrap 'echo $CUDA_VISIBLE_DEVICES'; sacct")
        print("Ctrl-C stops the cluster.")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    _main()
