"""One training process per run folder: ``<run>/train.lock``.

The process that writes a run folder (the chief of a multi-worker job; the other
workers write nothing there and take no lock) creates ``train.lock`` before its
first write, with ``O_CREAT | O_EXCL`` so that exactly one of two processes
started together gets it. The file names the holder (JSON)::

    {"host": "node7", "pid": 4121, "pid_start": 8812345, "boot_id": "3f0c...",
     "pid_ns": "pid:[4026531836]", "started": "2026-12-03T10:14:02",
     "heartbeat_seconds": 15, "command": "..."}

and its modification time is the heartbeat: a thread of the holder touches it
every ``heartbeat_seconds``. The lock is removed when the run ends (also on an
error or a graceful stop).

A second process on the same folder (``--resume``, a ``--backup_dir`` restart, a
new run told to use it) stops at once with ``RunFolderInUseError``, naming the
host, the PID, when it started and its last heartbeat. A lock left by a process
that was killed is taken over, with a warning in the log, when

* the holder ran on this host (same host name, boot and PID namespace) and its PID
  is gone, or now belongs to another process (another start time: the PID was
  reused, e.g. in a restarted container); or
* the holder ran elsewhere (another host on shared storage, or another container
  whose PIDs this process cannot see) and its heartbeat is older than
  ``stale_seconds`` (default 120 s: eight missed heartbeats; the hosts' clocks and
  the file server's must agree to well within that).

Taking over renames the stale file away first (an atomic rename: of two processes
taking over together, one wins) and checks that what was renamed is the stale
lock that was judged, so a lock taken a moment earlier by a live process is put
back, not stolen.
"""

import datetime
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

LOCK_NAME = "train.lock"
HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 120.0

_log = logging.getLogger("oasis_tf.training")


class RunFolderInUseError(RuntimeError):
    """Another live process holds the run folder's lock.

    Attributes:
        folder: the run folder.
        holder: the lock's contents (host, pid, started, ...).
        heartbeat_age: seconds since its last heartbeat (None: unknown).
    """

    def __init__(self, folder, holder, heartbeat_age):
        self.folder, self.holder, self.heartbeat_age = Path(folder), dict(holder), heartbeat_age
        beat = ("" if heartbeat_age is None
                else f", last heartbeat {heartbeat_age:.0f} s ago")
        pid, host = holder.get("pid", "?"), holder.get("host", "?")
        super().__init__(
            f"run folder {self.folder} is in use by PID {pid} on host {host} (started "
            f"{holder.get('started', '?')}{beat}): one process per run folder. Wait for it "
            f"to end, or stop it (`kill -TERM {pid}` on {host} checkpoints and stops a "
            f"training run); the lock of a killed process is taken over by itself "
            f"(its PID gone on this host, or no heartbeat for {STALE_SECONDS:.0f} s)")


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _pid_namespace():
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_start(pid):
    """The start time of ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[19])  # field 22 of stat(5); the first two are before ")"
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OSError, ValueError, TypeError):
        return False
    return True


class RunLock:
    """The lock of one run folder (see the module docstring).

    Args:
        folder: the run folder.
        heartbeat_seconds: how often the holder touches the lock file.
        stale_seconds: a lock of another host whose heartbeat is older than this
            is taken over.
        logger: where take-overs are logged (default: not logged; ``takeover``
            holds the line for the caller's log).
    """

    def __init__(self, folder, heartbeat_seconds=None, stale_seconds=None, logger=None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.heartbeat_seconds = float(heartbeat_seconds or HEARTBEAT_SECONDS)
        self.stale_seconds = float(stale_seconds or STALE_SECONDS)
        self.logger = logger
        self.takeover = None  # what was taken over and why, for the run's log
        self._held = None
        self._stop = threading.Event()
        self._thread = None

    # ------------------------------------------------------------ public
    def acquire(self):
        """Takes the lock (taking over a stale one, logged); returns ``self``.

        Raises:
            RunFolderInUseError: a live process holds it.
        """
        mine = self._record()
        for _ in range(5):
            if self._create(mine):
                self._held = mine
                self._start_heartbeat()
                return self
            holder, age = self._read()
            if holder is None:  # vanished, or being written this instant: look again
                time.sleep(0.05)
                continue
            reason = self._stale_reason(holder, age)
            if reason is None:
                raise RunFolderInUseError(self.folder, holder, age)
            if self._take_over(holder):
                self.takeover = (f"took over {self.path} of PID {holder.get('pid')} on host "
                                 f"{holder.get('host')} (started {holder.get('started')}): "
                                 f"{reason}")
                if self.logger is not None:
                    self.logger.warning("%s", self.takeover)
        holder, age = self._read()
        raise RunFolderInUseError(self.folder, holder or {}, age)

    def release(self):
        """Stops the heartbeat and removes the lock file when it is still this
        process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._held is not None:
            holder, _ = self._read()
            if holder == self._held:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            self._held = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    # ------------------------------------------------------------ internals
    def _record(self):
        return {"host": socket.gethostname(), "pid": os.getpid(),
                "pid_start": _process_start(os.getpid()), "boot_id": _boot_id(),
                "pid_ns": _pid_namespace(),
                "started": datetime.datetime.now().isoformat(timespec="seconds"),
                "heartbeat_seconds": self.heartbeat_seconds,
                "command": " ".join(sys.argv)[:500]}

    def _create(self, record):
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def _read(self, path=None):
        """``(holder dict or None, seconds since the heartbeat or None)``."""
        path = path or self.path
        try:
            age = time.time() - os.stat(path).st_mtime
            with open(path, encoding="utf-8") as f:
                holder = json.load(f)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError):
            # a lock being written right now, or a torn one of a killed writer
            try:
                age = time.time() - os.stat(path).st_mtime
            except OSError:
                return None, None
            return ({"host": "?", "pid": "?", "started": "?", "unreadable": True}, age)
        return (holder if isinstance(holder, dict) else {"unreadable": True}), age

    def _stale_reason(self, holder, age):
        """Why ``holder``'s lock is stale, or None when its process may be alive."""
        if holder.get("unreadable"):
            # O_EXCL creation and the write take microseconds; older is a torn file
            if age is not None and age > 5:
                return f"the lock file is unreadable and {age:.0f} s old"
            return None
        same_host = holder.get("host") == socket.gethostname()
        same_boot = holder.get("boot_id") == _boot_id()
        if same_host and same_boot and holder.get("pid_ns") == _pid_namespace():
            pid = holder.get("pid")
            if pid == os.getpid() and holder.get("pid_start") == _process_start(os.getpid()):
                return None  # this very process holds it (a second train() in it)
            if not _pid_alive(pid) or pid == os.getpid():
                return "its process is gone"
            start = holder.get("pid_start")
            if start is not None and _process_start(pid) not in (None, start):
                return "its PID now belongs to another process"
            return None
        if same_host and holder.get("boot_id") and not same_boot:
            return "the host has restarted since"
        if age is not None and age > self.stale_seconds:
            return (f"no heartbeat for {age:.0f} s (more than {self.stale_seconds:.0f} s; "
                    f"its host {holder.get('host')} is not this one)")
        return None

    def _take_over(self, holder):
        """Moves the stale lock away; True when the moved file was ``holder``'s."""
        moved = self.path.with_name(f".{LOCK_NAME}.stale-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return False
        got, _ = self._read(moved)
        if got == holder:
            moved.unlink(missing_ok=True)
            return True
        # another process took the lock between our read and the rename: put it back
        try:
            os.link(moved, self.path)
        except FileExistsError:
            pass
        moved.unlink(missing_ok=True)
        return False

    def _start_heartbeat(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="oasis-run-lock",
                                        daemon=True)
        self._thread.start()

    def _beat(self):
        while not self._stop.wait(self.heartbeat_seconds):
            holder, _ = self._read()
            if holder != self._held:
                (self.logger or _log).error(
                    "%s no longer names this process (now: %s); another process may "
                    "write this run folder", self.path, holder)
                return
            try:
                os.utime(self.path)
            except OSError:
                pass
