"""A real one-machine SLURM cluster for tests: munged + slurmctld + slurmd from Debian's packages,
configured in a temporary folder and stopped by their process ids."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF = """ClusterName=atomforge
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
ReturnToService=2
MpiDefault=none
KillWait=20
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def available() -> str | None:
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol") if shutil.which(b) is None]
    if missing:
        return f"missing {', '.join(missing)}: install slurm-wlm and munge (make slurm-deps)"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root"
    return None


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.procs: list[subprocess.Popen] = []
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def start(self, timeout: float = 60):
        r = self.root
        for d in ("state", "spool", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        self.conf.write_text(CONF.format(host=self.host, root=r, ctld_port=_port(), d_port=_port(),
                                         cpus=os.cpu_count() or 2))
        self._daemon(["munged", "--foreground", "--force", f"--socket={r}/munge.sock", f"--key-file={key}",
                      f"--pid-file={r}/munge/munged.pid", f"--log-file={r}/munge/munged.log",
                      f"--seed-file={r}/munge/seed"])
        self._wait(lambda: (r / "munge.sock").exists(), timeout, "munged")
        self._daemon(["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: subprocess.run(["scontrol", "ping"], env=self.env, capture_output=True,
                                          text=True).stdout.count("UP") > 0, timeout, "slurmctld")
        self._daemon(["slurmd", "-D", "-f", str(self.conf)])
        self._wait(self._node_idle, timeout, "slurmd")
        return self

    def _daemon(self, cmd):
        log = open(self.root / f"{cmd[0]}.stdout", "w")
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True).stdout
        return "idle" in out or "mix" in out or "alloc" in out

    def _wait(self, cond, timeout, what):
        t0 = time.time()
        while time.time() - t0 < timeout:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited ({p.returncode}); see {self.root}")
            if cond():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{what} not ready in {timeout} s; see logs in {self.root}")

    def run(self, *cmd) -> str:
        res = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
        return res.stdout.strip()

    def job(self, job_id: str) -> dict:
        out = self.run("scontrol", "show", "job", "-o", job_id)
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def stop(self):
        for p in reversed(self.procs):  # slurmd, slurmctld, munged: by their own process ids
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
