"""In-memory sliding-window limits. Never persisted: who did what when is not written anywhere."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Hashable


class SlidingWindowLimit:
    """At most `limit` events per key within `window` seconds.

    Keys whose events have all expired are dropped once per window, so the memory follows the
    people active in the last window, not everyone who ever did something."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[Hashable, list[float]] = {}
        self._swept_at = clock()

    def _recent(self, key: Hashable) -> list[float]:
        events = self._events.get(key)
        if events is None:
            return []
        # A list, not a deque: a deque is some 600 bytes even with one event in it.
        del events[: bisect.bisect_right(events, self._clock() - self.window)]
        if not events:
            del self._events[key]
        return events

    def record(self, key: Hashable) -> None:
        now = self._clock()
        if now - self._swept_at >= self.window:
            horizon, self._swept_at = now - self.window, now
            self._events = {k: events for k, events in self._events.items() if events[-1] > horizon}
        self._recent(key)
        self._events.setdefault(key, []).append(now)

    def keys_held(self) -> int:
        """Those with an event in the last window or two."""
        return len(self._events)

    def retry_after(self, key: Hashable) -> float:
        """Seconds until one more event is allowed (0 when it already is)."""
        events = self._recent(key)
        if len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window - self._clock())
