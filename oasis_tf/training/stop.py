"""Stopping a training run cleanly: on SIGTERM / SIGINT, or when asked from Python.

Clusters and spot machines send SIGTERM before they kill (Kubernetes, Slurm: a
grace period of typically 30 s). A run told to stop finishes the step in flight,
writes a checkpoint at that step and returns; ``train`` logs
``stopped by SIGTERM at step N; checkpoint ...; continue with --resume ...`` and
``oasis-train`` exits with 128 + the signal number (143 for SIGTERM, 130 for
SIGINT), the status a shell reports for a process ended by that signal.

Library code does not touch the process's signal handlers on its own (a notebook
keeps its Ctrl+C): ``train(stop_signals=...)`` installs them for the duration of
the training loop, in the main thread only, and puts the previous ones back.
The first signal requests the stop and restores the previous handler, so a
second one acts as it would have (Ctrl+C twice interrupts at once).
``StopRequest.request`` stops a run from another thread without signals.

Multi-worker jobs: a signal may reach one worker only (its machine is preempted).
Every step, the workers add up their requests (``distribute.sum_over_workers``,
one small all-reduce), so all of them stop after the same step and the chief
checkpoints it.
"""

import contextlib
import logging
import signal
import threading

# the codes summed over the workers: one slot per kind of request
CODES = {"SIGTERM": 0, "SIGINT": 1, "request": 2}


def signal_name(signum):
    """"SIGTERM" for 15, ..."""
    try:
        return signal.Signals(int(signum)).name
    except ValueError:
        return f"signal {signum}"


class StopRequest:
    """A request to stop a training run after its step in flight.

    ``request(reason)`` from any thread or a signal handler; ``reason`` is a
    signal name ("SIGTERM") or free text. The first request wins.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reason = None
        self.signum = None

    @property
    def requested(self):
        return self.reason is not None

    def request(self, reason="a stop request", signum=None):
        with self._lock:
            if self.reason is None:
                self.reason, self.signum = str(reason), signum

    def code(self):
        """The slot of ``CODES`` this request fills (None: not requested)."""
        if self.reason is None:
            return None
        return CODES.get(self.reason, CODES["request"])


@contextlib.contextmanager
def handle_signals(stop, signals):
    """Within the block, each of ``signals`` (numbers or names) calls
    ``stop.request(<its name>)`` once and puts the previous handler back.

    Outside the main thread (where Python cannot install handlers) nothing is
    installed. The previous handlers are restored at the end."""
    signals = [signal.Signals[s] if isinstance(s, str) else signal.Signals(s)
               for s in (signals or ())]
    if signals and threading.current_thread() is not threading.main_thread():
        logging.getLogger("oasis_tf.training").warning(
            "stop signals %s not handled: train() runs outside the main thread (use "
            "StopRequest.request() from there)", ", ".join(s.name for s in signals))
        signals = []
    if not signals:
        yield stop
        return
    previous = {}

    def handler(signum, frame):
        stop.request(signal_name(signum), signum)
        old = previous.get(signum)
        if old is not None:
            signal.signal(signum, old)

    for s in signals:
        previous[s] = signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
