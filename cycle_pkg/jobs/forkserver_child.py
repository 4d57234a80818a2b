"""The fork server's child (:mod:`.forkserver`): a process forked from the server that becomes the job's
own, as a new `cycle` process would be (its standard streams, working directory, environment, umask,
signal handlers, logging, temporary directory, thread counts and random seeds), runs the job and ends
with its status; it ends too when its client dies.
"""

from __future__ import annotations

import atexit
import importlib
import io
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import traceback
from typing import NoReturn

# The signals a client forwards to its job's process; the child handles them as a new process would.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run_job(request: dict, fds: list[int], conn: socket.socket, target: str) -> NoReturn:
    """In a child the server just forked: become the process ``request`` describes (its streams ``fds``,
    directory, environment, umask), run ``target`` ("module:function", argv[1:] -> exit status) and exit
    with its status, or die of the signal that ended it; SIGTERM when the client's ``conn`` closes."""
    code, dying_of = 1, None
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, *FORWARDED):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python sets it up: KeyboardInterrupt
        _become(request, fds)
        _stop_with_client(conn)
        module, function = target.split(":")
        code = getattr(importlib.import_module(module), function)(sys.argv[1:])
    except SystemExit as err:
        code = _exit_code(err.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        dying_of = signal.SIGINT  # as Python ends on an uncaught KeyboardInterrupt
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()  # what a process's own end runs: logging's flush, MLflow's end of run
        finally:
            _flush()
            if dying_of is not None:
                signal.signal(dying_of, signal.SIG_DFL)
                os.kill(os.getpid(), dying_of)
            os._exit(code)


def _become(request: dict, fds: list[int]) -> None:
    """The job's streams, directory, environment and umask, and the state a new process would have."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.umask(request["umask"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=sys.stdin.encoding)
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False),
        encoding=sys.stdout.encoding,
        line_buffering=os.isatty(1),
        write_through=unbuffered,
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding=sys.stderr.encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.argv = list(request["argv"])
    logging.root.handlers.clear()  # the server's; a `cycle` command sets up its own
    logging.root.setLevel(logging.WARNING)
    tempfile.tempdir = None  # TMPDIR is the job's
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # torch and BLAS read it at their import, in the server
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        if "numpy" in sys.modules:
            import threadpoolctl

            threadpoolctl.threadpool_limits(int(threads))
    if "numpy.random" in sys.modules:  # its global generator, seeded from the OS in a new process
        sys.modules["numpy.random"].seed()


def _stop_with_client(conn: socket.socket) -> None:
    """SIGTERM this process when its client's end of the connection closes (the client died)."""

    def watch() -> None:
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="fork-server-client", daemon=True).start()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
