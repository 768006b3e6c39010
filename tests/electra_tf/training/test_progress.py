"""Progress lines: steady-state throughput (tracing excluded), ETA, paused time."""

from electra_tf.training import progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rate_starts_at_the_first_update_and_excludes_pauses():
    clock, lines = Clock(), []
    report = progress.Progress(100, batch_size=8, log=lines.append, clock=clock)
    clock.now += 30.0  # the first loop call: tracing
    report.update(1, {"loss": 13.123456, "mlm_loss": 2.1})
    assert report.seq_per_sec is None and report.eta() is None
    assert lines[-1] == ("step 1/100 (1.0%) | loss 13.12 mlm_loss 2.1 | elapsed 0:00:30 "
                         "(tracing) | seq/s from the next report")
    clock.now += 10.0
    report.update(11, {"loss": 12.0})  # 10 steps * 8 seq in 10 s
    assert report.seq_per_sec == 8.0
    assert report.eta() == 89 * 8 / 8.0
    assert lines[-1] == ("step 11/100 (11.0%) | loss 12 | 8.0 seq/s | elapsed 0:00:40 "
                         "| ETA 0:01:29")
    with report.paused():  # an eval: not training time
        clock.now += 50.0
    clock.now += 5.0
    report.update(21, {"loss": 11.0})
    assert report.seq_per_sec == 20 * 8 / 15.0
    assert report.elapsed == 95.0


def test_every_and_last_step_and_resumed_start():
    clock, lines = Clock(), []
    report = progress.Progress(25, batch_size=2, start_step=10, every=10, log=lines.append,
                               clock=clock)
    for step in range(11, 26):
        clock.now += 1.0
        report.update(step, {"loss": 1.0})
    assert [line.split(" |")[0] for line in lines] == ["step 20/25 (80.0%)",
                                                     "step 25/25 (100.0%)"]
    assert report.seq_per_sec == 2.0  # 14 steps after the first update, in 14 s
    assert lines[-1].endswith("| 2.0 seq/s | elapsed 0:00:15 | ETA 0:00:00")


def test_a_pause_after_the_last_update_does_not_change_the_rate():
    clock = Clock()
    report = progress.Progress(10, batch_size=1, log=lambda line: None, clock=clock)
    report.update(1, {})
    clock.now += 4.0
    report.update(5, {})
    with report.paused():  # e.g. the eval after the last step
        clock.now += 100.0
    assert report.seq_per_sec == 1.0
