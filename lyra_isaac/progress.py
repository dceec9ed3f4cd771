"""Progress reporting and cancellation shared by the CLI (tqdm), the batch runner and the Isaac Sim extension.

Library code reports through a :class:`Progress`; front ends subclass it or pass a callback. Library code
never prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import CancelledError

ProgressCallback = Callable[[str, float], None]
"""``callback(stage_name, fraction_done_in_0_1)``; called from the working thread."""


class Progress:
    """Reports stage progress and carries a cancellation flag.

    Args:
        callback: called as ``callback(stage, fraction)`` on every update; ``None`` reports nowhere.
    """

    def __init__(self, callback: ProgressCallback | None = None):
        self._callback = callback
        self._cancel = threading.Event()
        self.stage = ""

    def update(self, stage: str, fraction: float) -> None:
        """Report that ``stage`` is ``fraction`` (0..1) done; raises CancelledError if cancel() was called."""
        self.stage = stage
        if self._callback is not None:
            self._callback(stage, min(max(float(fraction), 0.0), 1.0))
        self.check_cancelled()

    def cancel(self) -> None:
        """Ask the running operation to stop at its next progress update."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise CancelledError(f"cancelled during '{self.stage}'")


NO_PROGRESS = Progress()
"""A Progress that reports nowhere; the default of library functions."""


def tqdm_progress(desc: str = "lyra-isaac", disable: bool | None = None) -> Progress:
    """A Progress that drives one tqdm bar (0-100 %) and shows the current stage as its postfix."""
    from tqdm.auto import tqdm

    bar_format = "{l_bar}{bar}| {n:.0f}% [{elapsed}] {postfix}"
    bar = tqdm(total=100, desc=desc, unit="%", disable=disable, bar_format=bar_format)

    def callback(stage: str, fraction: float) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.n = round(100 * fraction, 1)
        bar.refresh()
        if fraction >= 1.0 and stage == "done":
            bar.close()

    progress = Progress(callback)
    progress.bar = bar  # type: ignore[attr-defined]
    return progress
