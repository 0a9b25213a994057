# A python3 process that computes and logs to stdout (a file) while it is dumped and
# restored; at the end it checks its result and its own log from inside.
import os
import signal
import sys
import time

N = 250
M = (1 << 61) - 1

signal.signal(signal.SIGUSR1, lambda *a: None)


def step(state, i):
    return (state * 31 + (i * i * 7 + 3 * i) % 1000003) % M


print("READY", flush=True)
state = 0
table = {}
for i in range(N):
    state = step(state, i)
    table[i] = state
    print(f"{i} {state}", flush=True)
    time.sleep(0.01)

expect = 0
for i in range(N):
    expect = step(expect, i)
errors = []
if expect != state:
    errors.append(f"final state {state} != {expect}")
lines = open(os.readlink("/proc/self/fd/1")).read().split("\n")
lines = [l for l in lines if l and l[0].isdigit()]
if len(lines) != N:
    errors.append(f"log has {len(lines)} lines, expected {N}")
for k, l in enumerate(lines[:N]):
    i, v = map(int, l.split())
    if i != k or v != table[k]:
        errors.append(f"log line {k} is '{l}'")
        break
print("FAIL: " + "; ".join(errors) if errors else "PASS", flush=True)
sys.exit(1 if errors else 0)
