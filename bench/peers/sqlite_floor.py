# The database floor of bench db-floor, with Python's sqlite3 instead of sqlx: the same
# schema (migrations/sqlite), pragmas and statements (per message; the writer's per batch),
# 20,000 messages over 100 sessions at 1, 8 and 50 per transaction. BENCHMARKS.md reads
# sqlx's cost against it. Run: python3 bench/peers/sqlite_floor.py [messages]
import sqlite3, uuid, time, sys, glob, os, tempfile
d = tempfile.mkdtemp()
db = sqlite3.connect(os.path.join(d, "f.db"), isolation_level=None)
db.execute("PRAGMA journal_mode = WAL"); db.execute("PRAGMA synchronous = NORMAL"); db.execute("PRAGMA foreign_keys = ON")
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../migrations/sqlite/*.sql"))):
    db.executescript(open(f).read())
owner = str(uuid.uuid4())
db.execute("INSERT INTO users (id,name,role,created_at,updated_at) VALUES (?,?, 'viewer',0,0)", (owner, "o"))
S = [str(uuid.uuid4()) for _ in range(100)]
for i, s in enumerate(S):
    db.execute("INSERT INTO sessions (id,title,owner_id,created_at,updated_at,last_activity_at) VALUES (?,?,?,0,0,0)", (s, f"f{i}", owner))
C = "a message of about the size people type in a chat"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
now = 0
for shape in ("per message", "per batch"):
    for b in (1, 8, 50):
        t = time.perf_counter(); stored = 0
        while stored < N:
            n = min(b, N - stored); tg = [S[i % len(S)] for i in range(stored, stored + n)]; now += 1
            db.execute("BEGIN")
            if shape == "per message":
                for s in tg:
                    seq = db.execute("UPDATE sessions SET last_seq = last_seq + 1, last_activity_at = ? WHERE id = ? AND status = 'active' RETURNING last_seq", (now, s)).fetchone()[0]
                    db.execute("INSERT INTO messages (id,session_id,seq,role,user_id,content,metadata,created_at) VALUES (?,?,?,'user',NULL,?,'null',?)", (str(uuid.uuid4()), s, seq, C, now))
            else:
                counts = {}
                for s in tg: counts[s] = counts.get(s, 0) + 1
                ks = sorted(counts)
                cases = "".join(f" WHEN ?{2+2*k} THEN CAST(?{3+2*k} AS BIGINT)" for k in range(len(ks)))
                ids = ", ".join(f"?{2+2*k}" for k in range(len(ks)))
                params = [now]
                for k in ks: params += [k, counts[k]]
                rows = db.execute(f"UPDATE sessions SET last_seq = last_seq + CASE id{cases} END, last_activity_at = ?1 WHERE status = 'active' AND id IN ({ids}) RETURNING id, last_seq", params).fetchall()
                nxt = {i: last - counts[i] + 1 for i, last in rows}
                vals = ", ".join("(?,?,?,?,?,?,?,?)" for _ in tg); p = []
                for s in tg:
                    p += [str(uuid.uuid4()), s, nxt[s], "user", None, C, "null", now]; nxt[s] += 1
                db.execute(f"INSERT INTO messages (id,session_id,seq,role,user_id,content,metadata,created_at) VALUES {vals}", p)
            db.execute("COMMIT"); stored += n
        print(f"python sqlite3 {shape:12} {b:3}/tx: {N/(time.perf_counter()-t):8.0f} msg/s", flush=True)
