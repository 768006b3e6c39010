"""The build's progress line."""

import io

from pretrain_data import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_file_gets_whole_lines_terminal_a_redrawn_one():
    log = io.StringIO()
    printer = progress.ProgressPrinter(4_000_000, stream=log)
    printer.add(1_000_000, 500_000, 10)
    printer.add(1_000_000, 500_000, 10)  # within 10 s of the last line: not printed
    printer.close()
    lines = log.getvalue().split("\n")
    assert len(lines) == 3 and lines[-1] == ""
    assert " 25.0% 1.0/4.0 MB" in lines[0] and "10 examples" in lines[0]
    assert "[==============>" in lines[1] and " 50.0% 2.0/4.0 MB" in lines[1]
    assert "20 examples" in lines[1]
    terminal = Terminal()
    printer = progress.ProgressPrinter(0, stream=terminal)
    printer.update(5, 6, 7)
    printer.close()
    assert terminal.getvalue().startswith("\r[") and terminal.getvalue().endswith("\n")
    assert terminal.getvalue().count("\r") == 2


def test_disabled_printer_counts_silently():
    log = io.StringIO()
    printer = progress.ProgressPrinter(10, stream=log, enabled=False)
    printer.add(3, 4, 5)
    printer.close()
    assert log.getvalue() == "" and (printer.bytes, printer.tokens, printer.examples) == (3, 4, 5)
