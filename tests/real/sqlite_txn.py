# sqlite3 with a write transaction open across the dump: BEGIN IMMEDIATE and INSERTs
# hold POSIX locks on the database file (its SHARED and RESERVED bytes) and an open
# rollback journal. After the restore another process must still find the database
# locked and see none of the rows; then the restored process commits and another
# process sees every row.
import os
import signal
import sqlite3
import subprocess
import sys

ROWS = 500
PROBE = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
rows, total = con.execute("SELECT count(*), coalesce(sum(length(v)), 0) FROM t").fetchone()
try:
    con.execute("BEGIN IMMEDIATE")
    locked = False
    con.execute("ROLLBACK")
except sqlite3.OperationalError as e:
    locked = "locked" in str(e)
print(rows, total, int(locked))
"""


def probe(db):
    out = subprocess.run([sys.executable, "-c", PROBE, db], capture_output=True, text=True)
    if out.returncode:
        return None
    return tuple(map(int, out.stdout.split()))


work = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
db = os.path.join(work, f"sqlite-txn-{os.getpid()}.db")
for f in (db, db + "-journal"):
    if os.path.exists(f):
        os.unlink(f)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
con = sqlite3.connect(db, isolation_level=None)
con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v TEXT)")
con.execute("BEGIN IMMEDIATE")
for i in range(ROWS):
    con.execute("INSERT INTO t VALUES (?, ?)", (i, f"row {i}"))
want_len = sum(len(f"row {i}") for i in range(ROWS))
print("READY", flush=True)
signal.sigwait({signal.SIGUSR1})

errors = []
seen = probe(db)
if seen != (0, 0, 1):
    errors.append(f"before the commit another process sees {seen}, not (0, 0, 1): "
                  "rows, their length, locked")
con.execute("COMMIT")
seen = probe(db)
if seen != (ROWS, want_len, 0):
    errors.append(f"after the commit another process sees {seen}, not "
                  f"({ROWS}, {want_len}, 0)")
con.close()
for f in (db, db + "-journal"):
    if os.path.exists(f):
        os.unlink(f)
print("FAIL: " + "; ".join(errors) if errors else "PASS", flush=True)
sys.exit(1 if errors else 0)
