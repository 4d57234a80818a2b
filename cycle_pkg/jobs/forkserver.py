"""A fork server for local workflow runs: each `cycle` job forks from one process that imported torch,
torchvision, MLflow and kornia once, instead of importing them itself.

Those imports cost a `cycle` process about 9 CPU s on a CPU core; a demo or test-scale DAG has some 80
such jobs, so on a 2-core machine they were a third of its time. The Snakefile starts the server for a
local run (``workflow.fork_server``) and names its socket in ``CYCLE_FORKSERVER``. The `cycle` command
then hands its arguments, working directory, environment, umask and standard streams to the server,
which forks a child that sets them up as a new process would have them and runs the command. The client
stays the job's process: it forwards signals to the child and exits with the child's status (a signal's
death as that signal), so Snakemake, `kill` and a job's log see no difference; a client whose own process
dies takes its child with it (SIGTERM, so that a pretraining checkpoints). A client that finds no server
runs the command itself. The server imports only what starts no thread pool, CUDA context or MLflow
store, and its children get the job's thread counts, temporary directory and fresh random seeds
(:mod:`.forkserver_child`: how a child becomes the job's process).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import selectors
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .forkserver_child import FORWARDED, run_job

ENV = "CYCLE_FORKSERVER"
# Imported before any fork: the third-party packages the jobs spend their start-up on (MLflow's sqlite
# store imports alembic: 2.6 CPU s more), and the package's own command modules (an evaluation's module
# is named in cycle_pkg.eval.registry). Importing creates no thread pool, CUDA context or database engine.
PRELOAD = (
    "torch", "torchvision", "mlflow", "mlflow.store.tracking.sqlalchemy_store", "kornia", "matplotlib.pyplot",
    "cycle_pkg.cli", "cycle_pkg.pretrain.loop", "cycle_pkg.eval.runner",
)  # fmt: skip
TARGET = "cycle_pkg.cli:run"
_HEADER = struct.Struct("!I")

log = logging.getLogger(__name__)


# The client: the `cycle` process Snakemake started.


def call(path: str, argv: list[str]) -> int | None:
    """Run ``argv`` (``sys.argv`` of a `cycle` process) in a child of the server at ``path``; its exit
    status, or None when no server took the job (the caller then runs it itself)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        umask = os.umask(0)
        os.umask(umask)
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}).encode()
        socket.send_fds(client, [_HEADER.pack(len(request))], [0, 1, 2])
        client.sendall(request)
        replies = client.makefile("r")
        started = replies.readline()
    except OSError:
        client.close()
        return None
    if not started:  # the server closed the connection without forking: it is stopping
        client.close()
        return None
    pid = json.loads(started)["pid"]

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    ended = replies.readline()  # a forwarded signal interrupts nothing here: the read is retried (PEP 475)
    client.close()
    if not ended:
        print(
            f"cycle: the fork server at {path} ended before job process {pid}; its exit status is lost", file=sys.stderr
        )
        while _alive(pid):  # never report a job over while its process still writes its outputs
            time.sleep(1)
        return 1
    status = json.loads(ended)
    if "signal" in status:  # die of it as the child did, so that the shell sees 128 + N
        signum = status["signal"]
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum
    return status["exit"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# The server.


def serve(path: str, parent: int | None = None, preload: tuple[str, ...] = PRELOAD, target: str = TARGET) -> None:
    """Import ``preload``, then fork a child per connection at ``path`` that runs ``target`` ("module:function",
    argv[1:] -> exit status) until SIGTERM, SIGINT or the end of ``parent`` (Snakemake); then take no more
    jobs, report the running ones' statuses and return."""
    for name in preload:
        importlib.import_module(name)
    if "cycle_pkg.eval.registry" in sys.modules:
        for evaluation in sys.modules["cycle_pkg.eval.registry"].EVALUATIONS.values():
            importlib.import_module(evaluation.builder.split(":")[0], "cycle_pkg.eval")
    stopping = threading.Event()  # set by a signal handler; no other thread exists
    wakeup = socket.socketpair()  # a signal's byte wakes the loop (SIGCHLD: a job ended)
    for end in wakeup:
        end.setblocking(False)
    signal.set_wakeup_fd(wakeup[1].fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # only now, with everything imported: a client that comes earlier runs its job itself
    listener.listen(64)
    log.info("fork server ready at %s (pid %d)", path, os.getpid())
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wakeup[0], selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    try:
        while listener.fileno() >= 0 or children:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is listener:
                    _start_job(listener, children, target, inherited=(listener, selector, *wakeup))
                else:
                    wakeup[0].recv(4096)
            _report_ended(children)
            if parent is not None and os.getppid() != parent:
                stopping.set()
            if stopping.is_set() and listener.fileno() >= 0:
                selector.unregister(listener)
                listener.close()
                os.unlink(path)
                log.info("fork server stopping: %d job(s) still running", len(children))
    finally:
        if listener.fileno() >= 0:
            listener.close()
            Path(path).unlink(missing_ok=True)


def _start_job(listener: socket.socket, children: dict[int, socket.socket], target: str, inherited: tuple) -> None:
    conn, _ = listener.accept()
    conn.settimeout(10)  # for the request only: a client that sends nothing does not hold up the others
    try:
        request, fds = _receive(conn)
    except (OSError, ValueError) as err:
        log.warning("fork server: a malformed request (%s) was refused", err)
        conn.close()
        return
    conn.settimeout(None)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for end in (*inherited, *children.values()):  # the server's and the other jobs' connections
            end.close()
        run_job(request, fds, conn, target)
    for fd in fds:
        os.close(fd)
    children[pid] = conn
    log.info("job %d: %s", pid, shlex.join(request["argv"][1:]))
    try:
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    except OSError:  # the client is gone already; its child sees that and stops
        pass


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
    if len(header) != _HEADER.size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("expected a length and three file descriptors")
    (size,) = _HEADER.unpack(header)
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("the request ended early")
        body += chunk
    return json.loads(body), fds


def _report_ended(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        if os.WIFSIGNALED(status):
            reply = {"signal": os.WTERMSIG(status)}
        else:
            reply = {"exit": os.waitstatus_to_exitcode(status)}
        log.info("job %d ended: %s", pid, reply)
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        conn.close()


# Starting and stopping it around a Snakemake run.


class Server:
    """A server in its own process group (a terminal's Ctrl-C reaches the jobs through their clients) that ends
    with this process at the latest; ``path`` is its socket, for ``CYCLE_FORKSERVER``."""

    def __init__(self, log_file: Path, python: str = sys.executable) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="cycle-fork-"))  # short: a socket's path has ~100 bytes
        self.path = str(self.folder / "socket")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != ENV}
        with open(log_file, "ab") as out:
            self.process = subprocess.Popen(
                [python, "-m", "cycle_pkg.jobs.forkserver", self.path, "--parent", str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                process_group=0,
            )

    def stop(self, wait: float = 60.0) -> None:
        """Stop taking jobs; return when the running ones have ended (or after ``wait`` seconds)."""
        self.process.terminate()
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            log.warning("fork server %d: jobs still running after %.0f s, left to end", self.process.pid, wait)
            return
        shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cycle_pkg.jobs.forkserver", description=__doc__.splitlines()[0])
    parser.add_argument("socket", help="the UNIX socket to listen at")
    parser.add_argument("--parent", type=int, help="stop when this process (Snakemake) ends")
    parser.add_argument("--preload", nargs="*", default=PRELOAD, help="modules to import before forking")
    parser.add_argument("--target", default=TARGET, help=f"what a child runs (default: {TARGET})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.socket, args.parent, tuple(args.preload), args.target)


if __name__ == "__main__":
    main()
