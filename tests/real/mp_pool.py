# A python3 multiprocessing.Pool(4) job (fork start method: a tree of five processes
# with pipes, POSIX semaphores and helper threads): 3000 tasks mapped in order,
# progress printed every 100, the result last. The harness compares it all with an
# undisturbed run.
import multiprocessing


def task(i):
    x = i
    for k in range(20000):
        x = (x * 1103515245 + 12345 + k) % 2147483648
    return x


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    total = 0
    with multiprocessing.Pool(4) as pool:
        for n, r in enumerate(pool.imap(task, range(3000), chunksize=4)):
            total = (total * 31 + r) % 1000000007
            if n % 100 == 0:
                print("progress", n, flush=True)
    print("result", total, flush=True)
