"""firmware/eventlog.py on both runtimes: a bounded ring of files on flash that continues after a reboot,
never writes on note(), hides card numbers, and keeps the last lines readable (the console's `log N`)."""

import os

import pytest

# --- bodies --------------------------------------------------------------------------------------


def body_write(root, texts, flush_every):
    """Note `texts` (flushing every `flush_every`), flush; (files, next, tail 5, lost, lines, alerts)."""
    import os

    from firmware import eventlog

    log = eventlog.EventLog(root, lambda: 1700000000)
    for i, text in enumerate(texts):
        log.note(text, "W" if text.startswith("warn") else "I")
        if (i + 1) % flush_every == 0:
            log.flush()
    log.flush()
    return sorted(os.listdir(root + "/log")), log.next, log.tail(5), log.lost, log.lines, log.alerts


def body_reopen(root, text):
    """A new EventLog on the same flash (a reboot) continues the numbering; (next after, tail 2)."""
    from firmware import eventlog

    log = eventlog.EventLog(root, lambda: 1700000001)
    log.note(text)
    log.flush()
    return log.next, log.tail(2)


def body_pending(root, count):
    """note() alone writes nothing; past PENDING_MAX lines are counted as lost; tail shows pending lines."""
    import os

    from firmware import eventlog

    log = eventlog.EventLog(root, lambda: 5)
    for i in range(count):
        log.note("line %d" % i)
    return os.listdir(root), log.pending(), log.lost, log.tail(2)


def body_clean(texts):
    from firmware import eventlog

    return [eventlog.clean(t) for t in texts] + [eventlog.short(bytes(range(16)))]


def body_say(root):
    """say() logs operational lines, not accepted taps (the journal has those)."""
    from firmware import eventlog

    log = eventlog.EventLog(root, lambda: 9)
    eventlog.capture(log)
    try:
        print("uplink: link down (timeout), retrying")
        print("tap #7 accepted 200 fen")
        print("tap declined: on deny list (record #8)")
    finally:
        import builtins

        builtins.print = eventlog._print
        eventlog._log = None
    return log.tail(10), log.alerts


# --- tests ----------------------------------------------------------------------------------------------


def host_dir(runtime, path):
    if runtime.name == "board":
        pytest.skip("uses a directory of this host, which a real board cannot see")
    return str(path)


def test_the_log_is_a_bounded_ring_of_files(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    texts = ["event number %d with some words to fill the line" % i for i in range(600)]
    files, nxt, tail, lost, lines, _ = runtime.run(body_write, root, texts, 7)
    assert nxt == 600 and lost == 0 and lines == 600
    assert len(files) == 4  # FILES: the oldest were deleted as new ones started
    sizes = [os.path.getsize(os.path.join(root, "log", f)) for f in files]
    assert max(sizes) <= 4096
    assert sum(sizes) < 4 * 4096
    assert tail[-1] == "599 1700000000 I event number 599 with some words to fill the line"
    assert [int(line.split()[0]) for line in tail] == [595, 596, 597, 598, 599]
    # every file starts at the number it is named by
    for f in files:
        with open(os.path.join(root, "log", f)) as fh:
            assert int(fh.readline().split()[0]) == int(f)


def test_a_reboot_continues_the_numbering(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    runtime.run(body_write, root, ["boot %d" % i for i in range(30)], 30)
    after, tail = runtime.run(body_reopen, root, "after reboot")
    assert after == 31
    assert tail == ["29 1700000000 I boot 29", "30 1700000001 I after reboot"]


def test_noting_writes_nothing_until_a_flush_and_is_bounded(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    files, pending, lost, tail = runtime.run(body_pending, root, 40)
    assert files == [] and pending == 32 and lost == 8
    assert tail == ["30 5 I line 30", "31 5 I line 31"]


def test_card_numbers_never_reach_the_log(runtime):
    got = runtime.run(body_clean, ["pan 6212345678901234567 seen", "record #12345", "bell\x07\xe4", "x" * 400])
    assert got[0] == "pan <digits> seen"
    assert got[1] == "record #12345"
    assert got[2] == "bell??"
    assert len(got[3]) == 160
    assert got[4] == "00010203.."


def test_print_goes_to_the_log_except_accepted_taps(runtime, tmp_path):
    root = host_dir(runtime, tmp_path)
    tail, alerts = runtime.run(body_say, root)
    assert tail == ["0 9 W uplink: link down (timeout), retrying", "1 9 I tap declined: on deny list (record #8)"]
    assert alerts == 1


def test_a_log_line_damaged_by_hand_does_not_stop_the_log(tmp_path):
    from firmware import eventlog

    os.makedirs(tmp_path / "log")
    (tmp_path / "log" / "00000010").write_bytes(b"10 1 I ok\n\xff\xfe garbage")
    log = eventlog.EventLog(str(tmp_path), lambda: 2)
    log.note("next")
    log.flush()
    assert log.tail(1)[0].endswith("I next")
