/* Real servers (redis, memcached, nginx, node.js, python asyncio) dumped while they
 * serve, checked from outside by the harness's own client: their data (keys, counters,
 * workers, streams) must be what it was and they must answer. Each listens on a Unix
 * socket in its run's directory or on a free loopback port (included by harness.c). */
#include <arpa/inet.h>
#include <netinet/in.h>

#define SRV_KEYS 2000
#define SRV_BATCH 250
#define SRV_CLIENTS 50

struct srv_addr {
	bool tcp;
	bool v6;		/* tcp: on ::1, not 127.0.0.1 */
	int port;
	const char *host;	/* tcp: 127.0.0.1 or ::1 */
	char path[108];		/* unix */
	char text[128];		/* for messages, and the argument of our scripts */
};

struct srv_run {
	struct run r;
	struct srv_addr a;
	bool hold;		/* keep a connection open across the dump */
	int held;		/* that connection, or -1 */
	pid_t client;		/* the streaming clients' process outside the tree */
	char workers[256];	/* the master's children before the dump */
	struct {
		pid_t pid;
		int n;
	} hits[2];		/* each worker's count of requests */
};

struct server {
	const char *name;
	const char *need;
	int (*mode)(const struct server *sv, struct srv_run *s, enum mode m);
	int (*start)(struct srv_run *s);
	int (*fill)(struct srv_run *s);
	int (*check)(struct srv_run *s);
	unsigned over;		/* SRV_UNIX, SRV_TCP, SRV_TCP6: the variants run */
	bool hold;		/* a connection held across the dump (TCP only) */
};

#define SRV_UNIX 1
#define SRV_TCP 2
#define SRV_TCP6 4

/* ---- addresses and connections ---- */

/* The loopback address of the family, with a port. */
static socklen_t loopback(struct sockaddr_storage *ss, bool v6, int port)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		in6->sin6_addr = in6addr_loopback;
		return sizeof(*in6);
	}
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*in);
}

/* A loopback port nobody uses now (the server binds it next). */
static int free_port(bool v6)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, v6, 0);
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (s >= 0 && !bind(s, (struct sockaddr *)&ss, len) &&
	    !getsockname(s, (struct sockaddr *)&ss, &len))
		port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
				  ((struct sockaddr_in *)&ss)->sin_port);
	if (s >= 0)
		close(s);
	return port;
}

/* The server's address: a socket in the run's directory, or a free loopback port
 * (its text "127.0.0.1:P" or "[::1]:P", as nginx and our scripts take it). */
static int srv_addr_init(struct srv_run *s)
{
	struct srv_addr *a = &s->a;

	if (!a->tcp) {
		if (snprintf(a->path, sizeof(a->path), "%s/srv.sock", s->r.dir) >=
		    (int)sizeof(a->path))
			return why("%s is too long a directory for a socket", s->r.dir);
		snprintf(a->text, sizeof(a->text), "%s", a->path);
		return 0;
	}
	a->host = a->v6 ? "::1" : "127.0.0.1";
	a->port = free_port(a->v6);
	if (a->port <= 0)
		return why("no free port on %s: %s", a->host, strerror(errno));
	snprintf(a->text, sizeof(a->text), a->v6 ? "[%s]:%d" : "%s:%d", a->host, a->port);
	return 0;
}

/* A connection to the server, every wait on it bounded. */
static int srv_connect(const struct srv_addr *a)
{
	struct timeval tv = { 10, 0 };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, a->v6, a->port);
	int fd = socket(a->tcp ? ss.ss_family : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -1;
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", a->path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	rc = a->tcp ? connect(fd, (struct sockaddr *)&ss, len) :
		      connect(fd, (struct sockaddr *)&un, sizeof(un));
	if (rc) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len, const char *what)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return why("%s: cannot send: %s", what, n ? strerror(errno) : "closed");
		buf += n;
		len -= n;
	}
	return 0;
}

/* Send a request and read exactly the answer it must get. */
static int srv_talk(int fd, const char *what, const char *req, size_t rlen,
		    const char *want, size_t wlen)
{
	char *got = malloc(wlen + 1);
	size_t have = 0, at = 0;
	int rc = got ? send_all(fd, req, rlen, what) : why("out of memory");

	while (!rc && have < wlen) {
		ssize_t n = read(fd, got + have, wlen - have);

		if (n <= 0)
			rc = why("%s: %s after %zu bytes of the answer", what,
				 n ? strerror(errno) : "end of stream", have);
		else
			have += n;
	}
	while (!rc && at < wlen && got[at] == want[at])
		at++;
	if (!rc && at < wlen) {
		at = at > 20 ? at - 20 : 0;
		rc = why("%s answered '%.60s' where '%.60s' was due", what, got + at, want + at);
	}
	free(got);
	return rc;
}

static int srv_talk_str(int fd, const char *what, const char *req, const char *want)
{
	return srv_talk(fd, what, req, strlen(req), want, strlen(want));
}

/* Read until the server closes the connection. */
static int srv_until_end(int fd, const char *what, char *buf, size_t len)
{
	size_t have = 0;
	char scratch[4096];

	for (;;) {
		char *to = have + 1 < len ? buf + have : scratch;
		size_t room = have + 1 < len ? len - 1 - have : sizeof(scratch);
		ssize_t n = read(fd, to, room);

		if (n < 0)
			return why("%s: no end of the answer: %s", what, strerror(errno));
		if (!n)
			break;
		if (to != scratch)
			have += n;
	}
	if (len)
		buf[have] = 0;
	return 0;
}

/* Say goodbye and wait for the server to close its end. */
static int srv_quit(int fd, const char *what, const char *req)
{
	int rc = send_all(fd, req, strlen(req), what) || srv_until_end(fd, what, NULL, 0);

	close(fd);
	return rc ? -1 : 0;
}

static int srv_open(const struct srv_run *s, const char *what)
{
	int fd = srv_connect(&s->a);

	if (fd < 0)
		why("cannot connect to %s at %s: %s", what, s->a.text, strerror(errno));
	return fd;
}

/* ---- the server's side, seen from outside ---- */

/* The sockets of a /proc/net table: each one's inode, and its state (TCP's tables). */
struct sk_row {
	unsigned long ino;
	unsigned state;
};

struct sk_rows {
	struct sk_row *v;
	size_t n;
};

static void rows_load(struct sk_rows *t, const char *table, int ino_col, int st_col)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/net/%s", table);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		struct sk_row row = { 0, 0 }, *m;
		char *save, *tok = strtok_r(line, " \t\n", &save);

		for (int col = 0; tok; col++, tok = strtok_r(NULL, " \t\n", &save)) {
			if (col == ino_col)
				row.ino = strtoul(tok, NULL, 10);
			if (col == st_col)
				row.state = strtoul(tok, NULL, 16);
		}
		if (!row.ino || !(m = realloc(t->v, (t->n + 1) * sizeof(*m))))
			continue;
		t->v = m;
		t->v[t->n++] = row;
	}
	if (f)
		fclose(f);
}

static const struct sk_row *rows_find(const struct sk_rows *t, unsigned long ino)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].ino == ino)
			return &t->v[i];
	return NULL;
}

/* Is this socket of the tree a TCP connection, of any state, even closed (a socket
 * in no table but TCP's is one that was a connection and is closed now)? */
static bool is_tcp_conn(const struct sk_rows *tcp, const struct sk_rows *other,
			unsigned long ino)
{
	const struct sk_row *r = rows_find(tcp, ino);

	if (r)
		return r->state != 0x0a;	/* TCP_LISTEN */
	return !rows_find(other, ino);
}

/* The distinct socket inodes in the fds of the processes of session `sid`. */
static void tree_sockets(pid_t sid, struct sk_rows *out)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		char path[300], link[64];
		struct dirent *fe;
		DIR *fds;

		if (pid <= 0 || getsid(pid) != sid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		while (fds && (fe = readdir(fds))) {
			struct sk_row row = { 0, 0 }, *m;
			ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);

			if (n <= 0)
				continue;
			link[n] = 0;
			if (sscanf(link, "socket:[%lu]", &row.ino) != 1 || rows_find(out, row.ino) ||
			    !(m = realloc(out->v, (out->n + 1) * sizeof(*m))))
				continue;
			out->v = m;
			out->v[out->n++] = row;
		}
		if (fds)
			closedir(fds);
	}
	if (d)
		closedir(d);
}

/* TCP connections the server's tree holds, whatever their state. */
static int tree_tcp_conns(pid_t sid)
{
	static const struct { const char *name; int ino, st; } others[] = {
		{ "unix", 6, -1 }, { "udp", 9, -1 }, { "udp6", 9, -1 }, { "raw", 9, -1 },
		{ "raw6", 9, -1 }, { "netlink", 9, -1 }, { "packet", 8, -1 },
	};
	struct sk_rows tcp = { NULL, 0 }, other = { NULL, 0 }, mine = { NULL, 0 };
	int n = 0;

	/* The tree's sockets first: one made meanwhile is in the tables read after. */
	tree_sockets(sid, &mine);
	rows_load(&tcp, "tcp", 9, 3);
	rows_load(&tcp, "tcp6", 9, 3);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		rows_load(&other, others[i].name, others[i].ino, others[i].st);
	for (size_t i = 0; i < mine.n; i++)
		n += is_tcp_conn(&tcp, &other, mine.v[i].ino);
	free(tcp.v);
	free(other.v);
	free(mine.v);
	return n;
}

/* Connections the server holds: over TCP those of its tree in any state; over a
 * Unix socket those accepted on its path (an accepted socket has its listener's
 * name, whether or not its peer is still there). */
static int server_conns(const struct srv_run *s)
{
	FILE *f;
	char line[512], path[256];
	int n = 0;

	if (s->a.tcp)
		return tree_tcp_conns(s->r.pid);
	f = fopen("/proc/net/unix", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long flags, ino;

		path[0] = 0;
		if (sscanf(line, "%*x: %*x %*x %lx %*x %*x %lu %255s", &flags, &ino, path) == 3 &&
		    !strcmp(path, s->a.path) && !(flags & 0x10000))
			n++;
	}
	fclose(f);
	return n;
}

/* Wait until the server has closed every connection but the `want` held ones: a
 * dump must not meet a connection the harness already let go. */
static int server_settles(const struct srv_run *s, int want)
{
	double end = now() + READY_TIMEOUT;
	int n;

	while ((n = server_conns(s)) != want) {
		if (now() > end)
			return why("the server still holds %d connections on %s, not %d", n,
				   s->a.text, want);
		sleep_ms(5);
	}
	return 0;
}

/* The server answers connections (each probe closed at once). */
static int server_ready(struct srv_run *s, const char *what)
{
	double end = now() + READY_TIMEOUT;
	int status, fd;

	while ((fd = srv_connect(&s->a)) < 0) {
		if (reap_now(s->r.pid, &status) == s->r.pid)
			return why("%s exited before it listened (status 0x%x)", what, status);
		if (now() > end)
			return why("%s did not listen on %s within %.0f s", what, s->a.text,
				   READY_TIMEOUT);
		sleep_ms(10);
	}
	close(fd);
	return 0;
}

static int server_spawn(struct srv_run *s, char *const argv[])
{
	s->r.pid = spawn(argv, s->r.log, true);
	if (s->r.pid < 0)
		return why("cannot start %s", argv[0]);
	return server_ready(s, argv[0]);
}

/* ---- redis ---- */

static void kv_value(int k, char *v, size_t len)
{
	snprintf(v, len, "value-%d-%08x", k, k * 2654435761u);
}

static int redis_start(struct srv_run *s)
{
	char port[16];
	char *argv[] = { "/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1",
			 "--save", "", "--appendonly", "no", "--dir", s->r.dir,
			 "--daemonize", "no", "--unixsocket", s->a.path, NULL };

	snprintf(port, sizeof(port), "%d", s->a.tcp ? s->a.port : 0);
	if (s->a.tcp) {
		argv[4] = (char *)s->a.host;
		argv[13] = NULL;
	}
	return server_spawn(s, argv);
}

/* One key's request and the answer it must get. */
typedef void kv_line_fn(FILE *req, FILE *want, int k, const char *v, bool set);

/* Set (or get and compare) every key, SRV_BATCH requests at a time, pipelined. */
static int kv_keys(int fd, const char *what, kv_line_fn *line, bool set)
{
	int rc = 0;

	for (int b = 0; b < SRV_KEYS && !rc; b += SRV_BATCH) {
		char *req, *want, v[64];
		size_t rl, wl;
		FILE *q = open_memstream(&req, &rl), *w = open_memstream(&want, &wl);

		if (!q || !w)
			return why("out of memory");
		for (int k = b; k < b + SRV_BATCH; k++) {
			kv_value(k, v, sizeof(v));
			line(q, w, k, v, set);
		}
		fclose(q);
		fclose(w);
		rc = srv_talk(fd, what, req, rl, want, wl);
		free(req);
		free(want);
	}
	return rc;
}

static void redis_line(FILE *q, FILE *w, int k, const char *v, bool set)
{
	if (set) {
		fprintf(q, "SET key:%d %s\r\n", k, v);
		fputs("+OK\r\n", w);
		return;
	}
	fprintf(q, "GET key:%d\r\n", k);
	fprintf(w, "$%zu\r\n%s\r\n", strlen(v), v);
}

static int redis_keys(int fd, bool set)
{
	return kv_keys(fd, set ? "redis SET" : "redis GET", redis_line, set);
}

static int redis_fill(struct srv_run *s)
{
	int fd = srv_open(s, "redis");

	if (fd < 0)
		return -1;
	if (redis_keys(fd, true)) {
		close(fd);
		return -1;
	}
	if (srv_quit(fd, "redis", "QUIT\r\n"))
		return -1;
	if (!s->hold)
		return 0;
	s->held = srv_open(s, "redis");
	return s->held < 0 || srv_talk_str(s->held, "redis (held)", "SET held before\r\n",
					   "+OK\r\n") ? -1 : 0;
}

static int redis_check(struct srv_run *s)
{
	char dbsize[32];
	int fd = srv_open(s, "redis");

	snprintf(dbsize, sizeof(dbsize), ":%d\r\n", SRV_KEYS + (s->held >= 0));
	if (fd < 0)
		return -1;
	if (redis_keys(fd, false) || srv_talk_str(fd, "redis DBSIZE", "DBSIZE\r\n", dbsize)) {
		close(fd);
		return -1;
	}
	if (srv_quit(fd, "redis", "QUIT\r\n"))
		return -1;
	if (s->held < 0)
		return 0;
	return srv_talk_str(s->held, "redis (held across the dump)", "GET held\r\n",
			    "$6\r\nbefore\r\n") ||
	       srv_talk_str(s->held, "redis (held across the dump)", "INCR counter\r\n",
			    ":1\r\n") ? -1 : 0;
}

/* ---- memcached ---- */

static int memcached_start(struct srv_run *s)
{
	char port[16];
	char *argv[] = { "/usr/bin/memcached", "-u", "root", "-U", "0", "-s", s->a.path,
			 NULL, NULL, NULL, NULL, NULL };

	snprintf(port, sizeof(port), "%d", s->a.port);
	if (s->a.tcp) {
		argv[5] = "-l";
		argv[6] = (char *)s->a.host;
		argv[7] = "-p";
		argv[8] = port;
	}
	return server_spawn(s, argv);
}

/* The flags of each key are its number: memcached keeps them too. */
static void memcached_line(FILE *q, FILE *w, int k, const char *v, bool set)
{
	if (set) {
		fprintf(q, "set key:%d %d 0 %zu\r\n%s\r\n", k, k, strlen(v), v);
		fputs("STORED\r\n", w);
		return;
	}
	fprintf(q, "get key:%d\r\n", k);
	fprintf(w, "VALUE key:%d %d %zu\r\n%s\r\nEND\r\n", k, k, strlen(v), v);
}

static int memcached_keys(struct srv_run *s, bool set)
{
	int fd = srv_open(s, "memcached");

	if (fd < 0)
		return -1;
	if (kv_keys(fd, set ? "memcached set" : "memcached get", memcached_line, set)) {
		close(fd);
		return -1;
	}
	return srv_quit(fd, "memcached", "quit\r\n");
}

static int memcached_fill(struct srv_run *s)
{
	return memcached_keys(s, true);
}

static int memcached_check(struct srv_run *s)
{
	return memcached_keys(s, false);
}

/* ---- HTTP: nginx, node.js ---- */

/* GET / over HTTP/1.0: the status must be 200 and the body `body`. */
/* GET / over HTTP/1.0: the status must be 200; the body, NULL if not. */
static const char *http_body(struct srv_run *s, const char *what)
{
	static char answer[65536];
	const char *req = "GET / HTTP/1.0\r\nHost: cryo-test\r\n\r\n", *at;
	int fd = srv_open(s, what), rc;

	if (fd < 0)
		return NULL;
	rc = send_all(fd, req, strlen(req), what) ||
	     srv_until_end(fd, what, answer, sizeof(answer)) ? -1 : 0;
	close(fd);
	if (rc)
		return NULL;
	at = strstr(answer, "\r\n\r\n");
	if (strncmp(answer, "HTTP/1.1 200 ", 13) || !at) {
		why("%s answered '%.60s', not 200", what, answer);
		return NULL;
	}
	return at + 4;
}

static int http_get(struct srv_run *s, const char *what, const char *body)
{
	const char *got = http_body(s, what);

	if (!got)
		return -1;
	if (strcmp(got, body))
		return why("%s answered 200 with '%.60s', not '%s'", what, got, body);
	return 0;
}

static int nginx_start(struct srv_run *s)
{
	char conf[800], listen[200], *text, err[700];
	char *argv[] = { "/usr/sbin/nginx", "-p", s->r.dir, "-c", conf, "-e", err, NULL };
	const char *d = s->r.dir;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", d);
	snprintf(err, sizeof(err), "%s/error.log", d);
	if (s->a.tcp)
		snprintf(listen, sizeof(listen), "%s", s->a.text);
	else
		snprintf(listen, sizeof(listen), "unix:%s", s->a.path);
	if (asprintf(&text,
		 "daemon off;\nmaster_process on;\nworker_processes 2;\n"
		 "pid %s/nginx.pid;\nerror_log %s;\nevents { worker_connections 64; }\n"
		 "http {\n\taccess_log off;\n\tclient_body_temp_path %s/body;\n"
		 "\tproxy_temp_path %s/proxy;\n\tfastcgi_temp_path %s/fastcgi;\n"
		 "\tuwsgi_temp_path %s/uwsgi;\n\tscgi_temp_path %s/scgi;\n"
		 "\tserver {\n\t\tlisten %s;\n"
		 "\t\tlocation / { return 200 \"cryo nginx\\n\"; }\n\t}\n}\n",
		 d, err, d, d, d, d, d, listen) < 0)
		return why("out of memory");
	if (write_text(d, "nginx.conf", text)) {
		free(text);
		return -1;
	}
	free(text);
	return server_spawn(s, argv);
}

/* The master's children, as /proc lists them ("PID PID "). */
static int children_of(pid_t pid, char *buf, size_t len)
{
	char path[64], *s;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	s = read_proc(path);
	if (!s)
		return why("cannot read %s", path);
	snprintf(buf, len, "%s", s);
	free(s);
	return 0;
}

/* Wait for the server's `n` workers; their PIDs in s->workers. */
static int workers_up(struct srv_run *s, const char *what, int n)
{
	double end = now() + READY_TIMEOUT;
	char list[sizeof(s->workers)];
	int have = 0;

	while (have != n) {
		if (children_of(s->r.pid, s->workers, sizeof(s->workers)))
			return -1;
		memcpy(list, s->workers, sizeof(list));
		have = 0;
		for (char *p = strtok(list, " \n"); p; p = strtok(NULL, " \n"))
			have++;
		if (now() > end)
			return why("%s has %d workers, not %d", what, have, n);
		sleep_ms(10);
	}
	return 0;
}

/* The same workers as before the dump. */
static int workers_same(struct srv_run *s, const char *what)
{
	char now_workers[256];

	if (children_of(s->r.pid, now_workers, sizeof(now_workers)))
		return -1;
	if (strcmp(now_workers, s->workers))
		return why("%s's workers are '%s', not '%s' as before", what, now_workers,
			   s->workers);
	return 0;
}

static int nginx_fill(struct srv_run *s)
{
	return workers_up(s, "nginx", 2) || http_get(s, "nginx", "cryo nginx\n");
}

static int nginx_check(struct srv_run *s)
{
	if (workers_same(s, "nginx"))
		return -1;
	for (int i = 0; i < 4; i++)
		if (http_get(s, "nginx", "cryo nginx\n"))
			return -1;
	return 0;
}

static int node_start(struct srv_run *s)
{
	char script[700], where[128];
	char *argv[] = { "/usr/bin/node", script, where, NULL };

	snprintf(script, sizeof(script), "%s/http_hits.js", real_dir);
	snprintf(where, sizeof(where), "%s", s->a.text);
	return server_spawn(s, argv);
}

/* Its count of answered requests goes on from where it was: the server's probe was
 * not a request, so the first GET is hit 1. */
static int node_hits(struct srv_run *s, int from, int to)
{
	char body[32];

	for (int i = from; i <= to; i++) {
		snprintf(body, sizeof(body), "hits %d\n", i);
		if (http_get(s, "node", body))
			return -1;
	}
	return 0;
}

static int node_fill(struct srv_run *s)
{
	return node_hits(s, 1, 5);
}

static int node_check(struct srv_run *s)
{
	return node_hits(s, 6, 8);
}

/* A node.js cluster: a primary handing the connections of its listener to 2
 * workers, each counting its own requests. */
static int node_cluster_start(struct srv_run *s)
{
	char script[PATH_MAX + 32], where[128], abs[PATH_MAX];
	/* Run from /usr/lib: node's cluster binds a Unix socket by whichever of its
	 * relative and absolute paths is shorter, and cryo restores only absolute names
	 * (from a work directory near the socket's, as CI's clone in /tmp, it took the
	 * relative one). */
	char *argv[] = { "/usr/bin/env", "-C", "/usr/lib", "/usr/bin/node", script, where, "2",
			 NULL };

	snprintf(script, sizeof(script), "%s/http_hits.js",
		 realpath(real_dir, abs) ? abs : real_dir);
	snprintf(where, sizeof(where), "%s", s->a.text);
	return server_spawn(s, argv) || log_shows(s->r.log, "READY\n") ||
	       workers_up(s, "the node cluster", 2) ? -1 : 0;
}

/* `n` requests: each answered by one of the workers, whose count goes on. */
static int node_cluster_hits(struct srv_run *s, int n)
{
	for (int i = 0; i < n; i++) {
		const char *body = http_body(s, "the node cluster");
		int pid, hits, w;

		if (!body)
			return -1;
		if (sscanf(body, "worker %d hits %d", &pid, &hits) != 2)
			return why("the node cluster answered '%.60s'", body);
		for (w = 0; w < 2 && s->hits[w].pid != pid; w++)
			;
		if (w == 2)
			return why("the node cluster answered from %d, not a worker (%s)", pid,
				   s->workers);
		if (hits != s->hits[w].n + 1)
			return why("worker %d counted %d requests, not %d", pid, hits,
				   s->hits[w].n + 1);
		s->hits[w].n = hits;
	}
	return 0;
}

static int node_cluster_fill(struct srv_run *s)
{
	if (sscanf(s->workers, "%d %d", &s->hits[0].pid, &s->hits[1].pid) != 2)
		return why("no two workers in '%s'", s->workers);
	return node_cluster_hits(s, 6);
}

static int node_cluster_check(struct srv_run *s)
{
	return workers_same(s, "the node cluster") || node_cluster_hits(s, 6) ? -1 : 0;
}

/* ---- one server in one mode ---- */

/* Dump (and restore) with the connections a TCP case holds open. */
static void srv_conn_args(struct srv_run *s, bool conns)
{
	s->r.dump_extra = conns ? "--tcp-established" : NULL;
	s->r.restore_extra = s->r.dump_extra;
}

/* The mode's steps: dump and restore, dump --leave-running, or two of each. */
static int srv_steps(struct srv_run *s, enum mode m)
{
	char img2[700];

	snprintf(img2, sizeof(img2), "%s-2", s->r.img);
	if (step_dump(&s->r, s->r.img, m == MODE_LEAVE))
		return -1;
	if (m == MODE_LEAVE)
		return 0;
	if (step_restore_detached(&s->r, s->r.img))
		return -1;
	if (m != MODE_TWICE)
		return 0;
	return step_dump(&s->r, img2, false) || step_restore_detached(&s->r, img2) ? -1 : 0;
}

static int server_mode(const struct server *sv, struct srv_run *s, enum mode m)
{
	s->hold = sv->hold && s->a.tcp;
	if (srv_addr_init(s) || sv->start(s) || sv->fill(s) ||
	    server_settles(s, s->held >= 0))
		return -1;
	srv_conn_args(s, s->held >= 0);
	return srv_steps(s, m) || sv->check(s) ? -1 : 0;
}

/* Kill what a case left (the tree is its own session and group) and reap it,
 * keeping the case's verdict. */
static void srv_cleanup(struct srv_run *s)
{
	char verdict[sizeof(reason)];
	int status;

	memcpy(verdict, reason, sizeof(reason));
	if (s->held >= 0)
		close(s->held);
	if (s->client > 0 && is_wanted(s->client)) {
		kill(s->client, SIGKILL);
		wait_for(s->client, 10, &status);
	}
	/* Only a child of ours: a PID given up may be another's by now. */
	if (s->r.pid > 0 && is_wanted(s->r.pid)) {
		kill(-s->r.pid, SIGKILL);
		kill(s->r.pid, SIGKILL);
		wait_for(s->r.pid, 10, &status);
	}
	reap_orphans();
	memcpy(reason, verdict, sizeof(reason));
}

static const char *const srv_modes[] = { "kill", "leave", "twice" };

static void srv_result(struct srv_run *s, const char *name, enum mode m, int rc)
{
	result(name, mode_names[m], rc, rc ? s->r.log : NULL, rc ? s->r.cryo_log : NULL);
	if (!rc)
		remove_tree(s->r.dir);
}

/* The server over one of its variants (SRV_UNIX, SRV_TCP, SRV_TCP6), in each mode. */
static void run_server(const struct server *sv, unsigned over)
{
	static const enum mode modes[] = { MODE_KILL, MODE_LEAVE, MODE_TWICE };
	char name[64];

	snprintf(name, sizeof(name), "%s-%s", sv->name,
		 over == SRV_UNIX ? "unix" : over == SRV_TCP ? "tcp" : "tcp6");
	if (!selected(name))
		return;
	if (access(sv->need, X_OK)) {
		printf("SKIP %s: %s is not installed\n", name, sv->need);
		return;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct srv_run s;
		int rc;

		memset(&s, 0, sizeof(s));
		s.a.tcp = over != SRV_UNIX;
		s.a.v6 = over == SRV_TCP6;
		s.held = -1;
		run_dir(&s.r, name, srv_modes[modes[i]]);
		reason[0] = 0;
		rc = sv->mode(sv, &s, modes[i]);
		srv_cleanup(&s);
		/* No lock of the server's may outlive the case (any left is removed). */
		if (s.r.pid > 0 && netlock_left(s.r.pid))
			rc = -1;
		srv_result(&s, name, modes[i], rc);
	}
}

/* ---- python asyncio: 50 clients streaming through the dump ---- */

/* Wait until the clients' log has `n` lines starting with `what`; a FAIL line or the
 * clients' end stops the wait. */
static int clients_reach(const char *log, const char *what, int n)
{
	double end = now() + READY_TIMEOUT;

	while (count_in(log, what) < n) {
		if (file_has(log, "FAIL") || file_has(log, "Traceback"))
			return why("the clients failed before '%s' x%d", what, n);
		if (now() > end)
			return why("the clients' log did not show '%s' x%d within %.0f s", what, n,
				   READY_TIMEOUT);
		sleep_ms(5);
	}
	return 0;
}

static int stream_start(struct srv_run *s, char *clog)
{
	char script[700];
	char *both[] = { "/usr/bin/python3", script, "both", s->a.text, s->r.dir, NULL };
	char *server[] = { "/usr/bin/python3", script, "server", s->a.text, NULL };
	char *client[] = { "/usr/bin/python3", script, "client", s->a.text, s->r.dir, NULL };

	snprintf(script, sizeof(script), "%s/asyncio_echo.py", real_dir);
	if (!s->a.tcp) {
		snprintf(clog, 700, "%s", s->r.log);
		return server_spawn(s, both);
	}
	snprintf(clog, 700, "%s/clients.txt", s->r.dir);
	if (server_spawn(s, server) || server_settles(s, 0))
		return -1;
	s->client = spawn(client, clog, true);
	return s->client < 0 ? why("cannot start the clients") : 0;
}

/* Streaming before the dump, after it (from where it was), and at the end every
 * connection got back all it sent. */
static int stream_mode(const struct server *sv, struct srv_run *s, enum mode m)
{
	char clog[700];
	int before, status;

	(void)sv;
	if (srv_addr_init(s) || stream_start(s, clog) ||
	    clients_reach(clog, "connected ", 1) || server_settles(s, SRV_CLIENTS) ||
	    clients_reach(clog, "progress ", 2))
		return -1;
	srv_conn_args(s, s->a.tcp);
	if (srv_steps(s, m))
		return -1;
	before = count_in(clog, "progress ");
	if (clients_reach(clog, "progress ", before + 2))
		return -1;
	if (write_text(s->r.dir, "stop", ""))
		return -1;
	if (clients_reach(clog, "ok ", 1))
		return -1;
	if (s->client <= 0)
		return 0;
	if (wait_for(s->client, EXIT_TIMEOUT, &status))
		return -1;
	s->client = 0;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 :
	       why("the clients ended with status 0x%x", status);
}

static void run_servers(void)
{
	static const struct server servers[] = {
		{ "redis-2000-keys", "/usr/bin/redis-server", server_mode, redis_start,
		  redis_fill, redis_check, SRV_UNIX | SRV_TCP | SRV_TCP6, false },
		{ "redis-2000-keys-held-conn", "/usr/bin/redis-server", server_mode,
		  redis_start, redis_fill, redis_check, SRV_TCP | SRV_TCP6, true },
		{ "memcached-2000-keys", "/usr/bin/memcached", server_mode, memcached_start,
		  memcached_fill, memcached_check, SRV_UNIX | SRV_TCP | SRV_TCP6, false },
		{ "nginx-2-workers", "/usr/sbin/nginx", server_mode, nginx_start, nginx_fill,
		  nginx_check, SRV_UNIX | SRV_TCP | SRV_TCP6, false },
		{ "node-http", "/usr/bin/node", server_mode, node_start, node_fill, node_check,
		  SRV_UNIX | SRV_TCP | SRV_TCP6, false },
		{ "node-cluster-2-workers", "/usr/bin/node", server_mode, node_cluster_start,
		  node_cluster_fill, node_cluster_check, SRV_UNIX | SRV_TCP | SRV_TCP6, false },
		{ "python3-asyncio-50-clients", "/usr/bin/python3", stream_mode, NULL, NULL,
		  NULL, SRV_UNIX | SRV_TCP, true },
	};

	for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
		for (unsigned over = SRV_UNIX; over <= SRV_TCP6; over <<= 1)
			if (servers[i].over & over)
				run_server(&servers[i], over);
}
