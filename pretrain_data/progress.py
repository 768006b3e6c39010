"""The progress line of a build: bytes read, tokens/s, examples written, ETA."""

import sys
import time


class ProgressPrinter:
    """Prints `[====>   ] 45% 9.0/20.0 MB, 1.2M tokens/s, 12,345 examples, ETA 0:12`.

    On a terminal the line is redrawn in place twice a second; otherwise (a log file) a
    new line is written every 10 s.

    Args:
      total_bytes: the size of the input, for the percentage and the ETA (0: unknown).
      stream: where to print (default: `sys.stderr` when constructed, so a command's
        stderr redirection applies).
      enabled: False prints nothing (the counts are still kept).
    """

    def __init__(self, total_bytes, stream=None, enabled=True):
        stream = sys.stderr if stream is None else stream
        self._total = total_bytes
        self._stream = stream
        self._enabled = enabled
        self._tty = getattr(stream, "isatty", lambda: False)()
        self._start = time.time()
        self._last = 0.0
        self.bytes = self.tokens = self.examples = 0

    def update(self, bytes_read, tokens, examples, force=False):
        """Sets the totals so far; prints if it is time to (or `force`)."""
        self.bytes, self.tokens, self.examples = bytes_read, tokens, examples
        now = time.time()
        if not self._enabled or (not force and now - self._last < (0.5 if self._tty else 10.0)):
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        fraction = min(1.0, bytes_read / self._total) if self._total else 0.0
        bar = "=" * int(30 * fraction)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        line = "[%-30s] %5.1f%% %.1f/%.1f MB, %.2fM tokens/s, %d examples, ETA %d:%02d" % (
            bar[:-1] + ">" if bar else "", 100 * fraction, bytes_read / 1e6, self._total / 1e6,
            tokens / elapsed / 1e6, examples, eta // 60, eta % 60)
        self._stream.write(("\r" + line) if self._tty else (line + "\n"))
        self._stream.flush()

    def add(self, bytes_read, tokens, examples):
        """Adds increments to the totals (the signature of a job's `progress` callback)."""
        self.update(self.bytes + bytes_read, self.tokens + tokens, self.examples + examples)

    def close(self):
        """Prints the final line."""
        self.update(self.bytes, self.tokens, self.examples, force=True)
        if self._enabled and self._tty:
            self._stream.write("\n")
