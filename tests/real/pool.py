# A python3 process with 8 threads (a ThreadPoolExecutor of 7 workers and a ticker
# thread) that computes and ticks for about 3 s while it is dumped and restored; at
# the end it checks every result against a recomputation, the ticks, and that each
# thread kept its identity (name, native TID, thread-local state) from inside.
import concurrent.futures
import signal
import sys
import threading
import time

WORKERS = 7
RUN_S = 3.0
TICK_S = 0.05
TICKS = int(RUN_S / TICK_S)
M = (1 << 61) - 1

signal.signal(signal.SIGUSR1, lambda *a: None)
local = threading.local()
errors = []
errors_lock = threading.Lock()


def error(msg):
    with errors_lock:
        errors.append(msg)


def same_thread_as_before():
    """The worker's native TID and thread-local state are what they were."""
    me = threading.current_thread()
    if not hasattr(local, "tid"):
        local.tid = threading.get_native_id()
        local.name = me.name
        local.jobs = 0
    elif local.tid != threading.get_native_id() or local.name != me.name:
        error(f"thread {local.name} (tid {local.tid}) is now {me.name} "
              f"(tid {threading.get_native_id()})")
    local.jobs += 1


def compute(i):
    x = i * 0x9E3779B97F4A7C15 % M
    for k in range(500):
        x = (x * 6364136223846793005 + 1442695040888963407 + k) % M
    return x


def job(i):
    same_thread_as_before()
    return i, compute(i), threading.current_thread().name


def ticker(ticks):
    me = threading.get_native_id()
    for k in range(TICKS):
        t0 = time.monotonic()
        time.sleep(TICK_S)
        t1 = time.monotonic()
        ticks.append((k, t1 - t0))
        if threading.get_native_id() != me:
            error(f"ticker's TID changed from {me} to {threading.get_native_id()}")


def start_all_workers(pool):
    """Make the pool start every worker now: 7 jobs that wait for each other."""
    barrier = threading.Barrier(WORKERS)
    for f in [pool.submit(barrier.wait, 30) for _ in range(WORKERS)]:
        f.result()


def run():
    pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="pool")
    start_all_workers(pool)
    ticks = []
    tick_thread = threading.Thread(target=ticker, args=(ticks,), name="ticker")
    tick_thread.start()
    names = {t.name for t in threading.enumerate()}
    if threading.active_count() != WORKERS + 2:
        error(f"{threading.active_count()} threads at start, expected {WORKERS + 2}")
    print("READY", flush=True)

    results = {}
    used = set()
    n = 0
    end = time.monotonic() + RUN_S
    while time.monotonic() < end:
        batch = [pool.submit(job, n + j) for j in range(4 * WORKERS)]
        n += len(batch)
        for f in batch:
            i, v, name = f.result()
            results[i] = v
            used.add(name)
    tick_thread.join()
    threads_at_end = {t.name for t in threading.enumerate()}
    pool.shutdown()

    for i in range(n):
        if results.get(i) != compute(i):
            error(f"result {i} is {results.get(i)}, expected {compute(i)}")
            break
    if len(results) != n:
        error(f"{len(results)} results for {n} jobs")
    if not used <= names or not used:
        error(f"jobs ran in threads {sorted(used)}, the pool had {sorted(names)}")
    if threads_at_end != names - {"ticker"}:
        error(f"threads at the end: {sorted(threads_at_end)}, expected "
              f"{sorted(names - {'ticker'})}")
    if [k for k, _ in ticks] != list(range(TICKS)):
        error(f"ticks {[k for k, _ in ticks][:10]}..., expected 0..{TICKS - 1}")
    early = [(k, d) for k, d in ticks if d < TICK_S * 0.98]
    if early:
        error(f"{len(early)} ticks slept less than {TICK_S} s, first {early[0]}")
    print(f"{n} jobs in {len(used)} workers, {len(ticks)} ticks", flush=True)


run()
print("FAIL: " + "; ".join(errors) if errors else "PASS", flush=True)
sys.exit(1 if errors else 0)
