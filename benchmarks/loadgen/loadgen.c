/*
 * loadgen: a single-threaded epoll WebSocket client for the django-ws benchmarks.
 *
 * RFC 6455 over plain TCP to 127.0.0.0/8 only: handshake with a fixed
 * Sec-WebSocket-Key, masked text frames, server frames of any length
 * (7-bit, 16-bit and 64-bit), fragmented messages, ping/pong and the close
 * handshake. Every mode is bounded in time (--timeout) and prints one JSON
 * line with its results and its own CPU time (getrusage) and wall time.
 *
 * Modes:
 *   pingpong   N connections each send {"type": "echo", "n": i, "payload": ...}
 *              and wait for the echo, for --warmup + --duration seconds.
 *   churn      N workers each connect, send one message, read the echo, close
 *              (clean close handshake), repeat, for --warmup + --duration seconds.
 *   idle       open N connections, print {"event": "ready"}, hold them until a
 *              line (or EOF) on stdin or --duration seconds, then close them.
 *   broadcast  N members (spread over --ports) plus one trigger connection on
 *              --trigger-path; each round the trigger sends
 *              {"type": "broadcast", "seq": k, ...} and the time until the last
 *              member received seq k is recorded, for --count rounds.
 *
 * Build: gcc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* RFC 6455 section 1.3 example key and its accept value. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define MAX_PORTS 8
#define MAX_HEADERS 8
#define MAX_EVENTS 1024
#define CLOSE_GRACE 5.0  /* seconds to wait for close handshakes at the end */
#define ROUND_TIMEOUT 10.0

enum mode { M_PINGPONG, M_CHURN, M_IDLE, M_BROADCAST };
enum state { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };
enum role { R_ECHO, R_MEMBER, R_TRIGGER };

typedef struct {
    int fd;
    int state;
    int role;
    int idx;
    int port;
    const char *path;
    int epout;          /* EPOLLOUT registered */
    int got_close;      /* server close frame received */
    int sent_close;
    int awaiting;       /* an echo is outstanding */
    int echoed;         /* the last echo came back correct */
    int synced;
    int sio_pending;    /* socketio: WebSocket open, Socket.IO connect not yet acknowledged */
    long n;             /* sequence number of the outstanding echo */
    long last_seq;      /* broadcast: last seq received */
    double t_start;     /* churn: when this connection attempt started */
    double t_sent;      /* pingpong: when the outstanding echo was sent */
    double t_close;     /* when the close handshake was started */
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf;
    size_t wlen, woff, wcap;
    char *frag;         /* fragmented message assembly */
    size_t flen, fcap;
} conn_t;

/* ---- options ---------------------------------------------------------- */

static int opt_mode = M_PINGPONG;
static char opt_host[64] = "127.0.0.1";
static int opt_ports[MAX_PORTS] = {8000};
static int opt_nports = 1;
static const char *opt_path = "/echo";
static const char *opt_trigger_path = "/trigger";
static int opt_conns = 1;
static double opt_duration = 5.0;
static double opt_warmup = 1.0;
static long opt_count = 10;          /* broadcast rounds */
static long opt_warmup_rounds = 2;   /* broadcast rounds not recorded */
static double opt_gap = 0.05;        /* broadcast: pause between rounds */
static double opt_timeout = 120.0;   /* hard limit on the whole run */
static int opt_payload = 100;
static int opt_inflight = 200;       /* concurrent connects/handshakes */
static int opt_wait_stdin = 0;
static const char *opt_headers[MAX_HEADERS];
static int opt_nheaders = 0;
enum handshake { HS_MINIMAL, HS_GO, HS_BROWSER };
static int opt_handshake = HS_MINIMAL;  /* which client's handshake headers to send */
static int opt_close_abrupt = 0;       /* churn: close TCP right after the close frame */
static int opt_idle_echo = 0;          /* idle: one echo per connection before idling */
static int opt_sources = 1;            /* source addresses 127.0.0.1..N, round robin */
static int opt_socketio = 0;           /* speak Socket.IO (Engine.IO 4) over the WebSocket */

/* ---- state ------------------------------------------------------------ */

static int ep;
static conn_t *conns;
static int nconns;
static char *payload_str;
static struct sockaddr_in addrs[MAX_PORTS];
static double t_begin, hard_deadline;
static int finished;
static int aborted;
static const char *abort_reason = "";

static long st_connect_errors, st_handshake_errors, st_protocol_errors;
static long st_mismatches, st_unexpected_closes, st_close_timeouts;
static long st_ok;  /* completed operations inside the measurement window */
static long st_total_ok;

static double *samples;
static size_t nsamples, capsamples;

/* pingpong/churn window */
static double t_warm_end, t_meas_end, t_measure_started;
static struct rusage ru_meas_start, ru_meas_end;
static int window_started, window_done;
static int nopen, nfailed, ndone;
static int next_to_open;   /* index of the next connection to open */
static int inflight;       /* connects + handshakes in progress */

/* idle */
static int idle_phase;     /* 0 opening, 1 holding, 2 closing */
static double t_ready, t_hold_end, t_close_deadline;

/* broadcast */
static int nmembers;
static int nsynced;
/* 0 connecting, 1 settle, 2 wait stdin, 3 rounds, 6 wait stdin, 4-5 closing */
static int bc_phase;
static long bc_round;      /* current round (includes warm-up rounds) */
static long bc_received;
static double bc_t0, bc_t_first, bc_next_at, bc_round_deadline;
static int bc_in_round;
static double *bc_times, *bc_first;
static long *bc_missed;
static long bc_nrecorded;

static uint32_t rng_state = 0x9e3779b9u;

/* ---- helpers ---------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rng(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) die("out of memory");
    return q;
}

static void add_sample(double v) {
    if (nsamples == capsamples) {
        if (capsamples >= 4000000) return;
        capsamples = capsamples ? capsamples * 2 : 4096;
        samples = xrealloc(samples, capsamples * sizeof *samples);
    }
    samples[nsamples++] = v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p * (n - 1) + 0.5);
    return v[i];
}

/* Find `"key"` followed by optional spaces and a colon, parse the integer. */
static int json_int_field(const char *buf, size_t len, const char *key, long *out) {
    size_t klen = strlen(key);
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *q = memmem(p, end - p, key, klen);
        if (!q) return 0;
        const char *r = q + klen;
        while (r < end && (*r == ' ' || *r == '\t')) r++;
        if (r < end && *r == ':') {
            r++;
            while (r < end && (*r == ' ' || *r == '\t')) r++;
            int neg = 0;
            if (r < end && *r == '-') { neg = 1; r++; }
            if (r >= end || *r < '0' || *r > '9') return 0;
            long v = 0;
            while (r < end && *r >= '0' && *r <= '9') v = v * 10 + (*r++ - '0');
            *out = neg ? -v : v;
            return 1;
        }
        p = q + 1;
    }
    return 0;
}

/* ---- epoll / io ------------------------------------------------------- */

static void ep_set(conn_t *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = c->idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod: %s", strerror(errno));
    c->epout = out;
}

static void conn_release(conn_t *c) {
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE || c->sio_pending) inflight--;
    c->sio_pending = 0;
    c->fd = -1;
    c->rlen = c->wlen = c->woff = c->flen = 0;
    c->epout = 0;
    c->state = ST_DONE;
}

static void on_closed(conn_t *c, int clean);

static int conn_flush(conn_t *c) {
    while (c->woff < c->wlen) {
        ssize_t k = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        c->woff += k;
    }
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        if (c->epout) ep_set(c, 0);
    } else if (!c->epout) {
        ep_set(c, 1);
    }
    return 0;
}

static int conn_write(conn_t *c, const char *data, size_t len) {
    if (c->wlen + len > c->wcap) {
        c->wcap = (c->wlen + len) * 2;
        c->wbuf = xrealloc(c->wbuf, c->wcap);
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    if (conn_flush(c) < 0) {
        st_unexpected_closes++;
        on_closed(c, 0);
        return -1;
    }
    return 0;
}

/* Send one masked frame (client frames are always masked). */
static int send_frame(conn_t *c, int opcode, const char *data, size_t len) {
    char stackbuf[1024];
    size_t need = len + 14;
    char *f = need <= sizeof stackbuf ? stackbuf : xrealloc(NULL, need);
    size_t h = 0;
    f[h++] = (char)(0x80 | opcode);
    if (len < 126) {
        f[h++] = (char)(0x80 | len);
    } else if (len < 65536) {
        f[h++] = (char)(0x80 | 126);
        f[h++] = (char)(len >> 8);
        f[h++] = (char)len;
    } else {
        f[h++] = (char)(0x80 | 127);
        for (int i = 7; i >= 0; i--) f[h++] = (char)((uint64_t)len >> (8 * i));
    }
    uint32_t m = rng();
    unsigned char mask[4] = {m >> 24, m >> 16, m >> 8, m};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) f[h + i] = data[i] ^ mask[i & 3];
    int r = conn_write(c, f, h + len);
    if (f != stackbuf) free(f);
    return r;
}

static char *siobuf;
static size_t siocap;

/* A message; with --protocol socketio, the Socket.IO event ["msg", <message>]. */
static int send_text(conn_t *c, const char *data, size_t len) {
    if (!opt_socketio) return send_frame(c, 0x1, data, len);
    if (len + 16 > siocap) {
        siocap = len + 16;
        siobuf = xrealloc(siobuf, siocap);
    }
    int n = snprintf(siobuf, siocap, "42[\"msg\",%.*s]", (int)len, data);
    return send_frame(c, 0x1, siobuf, n);
}

static void start_close(conn_t *c) {
    if (c->state != ST_OPEN) return;
    c->state = ST_CLOSING;
    c->sent_close = 1;
    c->t_close = now_s();
    char body[2] = {0x03, (char)0xe8};  /* 1000 */
    send_frame(c, 0x8, body, 2);
}

static int conn_open(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        st_connect_errors++;
        c->state = ST_CONNECTING;
        inflight++;
        on_closed(c, 0);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt_sources > 1) {
        /* One source address has ~28,000 ephemeral ports towards one server port:
           spread connections over 127.0.0.1..N, the port chosen at connect(). */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl((127u << 24) | (unsigned)(1 + c->idx % opt_sources));
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            st_connect_errors++;
            c->state = ST_CONNECTING;
            inflight++;
            on_closed(c, 0);
            return -1;
        }
    }
    c->state = ST_CONNECTING;
    c->got_close = c->sent_close = c->awaiting = c->synced = c->echoed = 0;
    c->rlen = c->wlen = c->woff = c->flen = 0;
    c->last_seq = -1;
    c->t_start = now_s();
    inflight++;
    struct sockaddr_in *a = NULL;
    for (int i = 0; i < opt_nports; i++)
        if (opt_ports[i] == c->port) a = &addrs[i];
    if (!a) a = &addrs[0];
    int r = connect(c->fd, (struct sockaddr *)a, sizeof *a);
    if (r < 0 && errno != EINPROGRESS) {
        st_connect_errors++;
        on_closed(c, 0);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = c->idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add: %s", strerror(errno));
    c->epout = 1;
    return 0;
}

static void send_handshake(conn_t *c) {
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     c->path, opt_host, c->port);
    /* What other clients send besides the handshake's own headers: a Go client
       adds its User-Agent and, when given one (golang.org/x/net/websocket's Dial
       requires it), an Origin; a browser adds its Origin (same-origin page), a
       User-Agent and the headers of any request it makes. No
       Sec-WebSocket-Extensions: this client does not speak permessage-deflate. */
    if (opt_handshake == HS_GO)
        n += snprintf(req + n, sizeof req - n,
                      "User-Agent: Go-http-client/1.1\r\nOrigin: http://%s:%d\r\n", opt_host,
                      c->port);
    else if (opt_handshake == HS_BROWSER)
        n += snprintf(req + n, sizeof req - n,
                      "Origin: http://%s:%d\r\n"
                      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                      "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"
                      "Pragma: no-cache\r\n"
                      "Cache-Control: no-cache\r\n"
                      "Accept-Encoding: gzip, deflate, br, zstd\r\n"
                      "Accept-Language: en-US,en;q=0.9\r\n",
                      opt_host, c->port);
    for (int i = 0; i < opt_nheaders; i++)
        n += snprintf(req + n, sizeof req - n, "%s\r\n", opt_headers[i]);
    n += snprintf(req + n, sizeof req - n, "\r\n");
    c->state = ST_HANDSHAKE;
    conn_write(c, req, n);
}

/* ---- modes ------------------------------------------------------------ */

static char *msgbuf;
static size_t msgcap;

static void send_echo(conn_t *c, long n, int with_payload) {
    int len = snprintf(msgbuf, msgcap, "{\"type\": \"echo\", \"n\": %ld, \"payload\": \"%s\"}", n,
                       with_payload ? payload_str : "");
    c->n = n;
    c->awaiting = 1;
    c->t_sent = now_s();
    send_text(c, msgbuf, len);
}

static void begin_window(double t) {
    t_measure_started = t;
    t_warm_end = t + opt_warmup;
    t_meas_end = t_warm_end + opt_duration;
}

static void on_open(conn_t *c) {
    nopen++;
    switch (opt_mode) {
    case M_PINGPONG:
        break;  /* the window starts in tick() once every connection is open */
    case M_CHURN:
        send_echo(c, c->n + 1, 1);
        break;
    case M_IDLE:
        if (opt_idle_echo) send_echo(c, c->idx, 1);
        break;
    case M_BROADCAST:
        send_echo(c, c->idx, 0);
        break;
    }
}

static void check_echo(conn_t *c, const char *data, size_t len) {
    long n;
    if (!c->awaiting) {
        st_protocol_errors++;
        return;
    }
    c->awaiting = 0;
    c->echoed = 0;
    if (!json_int_field(data, len, "\"n\"", &n) || n != c->n) st_mismatches++;
    else if (c->role == R_ECHO && !memmem(data, len, payload_str, strlen(payload_str))) st_mismatches++;
    else c->echoed = 1;
}

static void on_text(conn_t *c, const char *data, size_t len) {
    double t = now_s();
    switch (opt_mode) {
    case M_PINGPONG: {
        double sent = c->t_sent;
        check_echo(c, data, len);
        if (t >= t_warm_end && t < t_meas_end) {
            st_ok++;
            add_sample(t - sent);
        }
        st_total_ok++;
        if (t < t_meas_end) send_echo(c, c->n + 1, 1);
        else start_close(c);
        break;
    }
    case M_CHURN:
        check_echo(c, data, len);
        start_close(c);
        if (opt_close_abrupt && c->state == ST_CLOSING) {
            /* Close TCP without waiting for the server's close frame, as clients
               that call close() right after sending theirs do. */
            c->got_close = 1;
            on_closed(c, 1);
        }
        break;
    case M_IDLE:
        if (!opt_idle_echo || !c->awaiting) {
            st_protocol_errors++;
            break;
        }
        check_echo(c, data, len);
        nsynced++;
        break;
    case M_BROADCAST: {
        long seq;
        if (c->awaiting) {  /* the sync echo */
            check_echo(c, data, len);
            if (!c->synced) {
                c->synced = 1;
                nsynced++;
            }
            break;
        }
        if (c->role != R_MEMBER || !json_int_field(data, len, "\"seq\"", &seq)) {
            st_protocol_errors++;
            break;
        }
        if (!bc_in_round || seq != bc_round || c->last_seq == seq) {
            st_mismatches++;
            break;
        }
        c->last_seq = seq;
        if (bc_received++ == 0) bc_t_first = t;
        if (bc_received == nmembers) {
            if (bc_round >= opt_warmup_rounds) {
                bc_times[bc_nrecorded] = t - bc_t0;
                bc_first[bc_nrecorded] = bc_t_first - bc_t0;
                bc_missed[bc_nrecorded] = 0;
                bc_nrecorded++;
            }
            bc_in_round = 0;
            bc_round++;
            bc_next_at = t + opt_gap;
        }
        break;
    }
    }
}

/* The connection is gone (EOF, reset, or released after close). */
static void on_closed(conn_t *c, int clean) {
    int was = c->state;
    if (was == ST_DONE) return;
    conn_release(c);
    double t = now_s();
    if (was == ST_OPEN && !clean) st_unexpected_closes++;
    if (was == ST_CONNECTING || was == ST_HANDSHAKE) nfailed++;
    if (opt_mode == M_CHURN) {
        if (clean && c->got_close && c->echoed) {
            st_total_ok++;
            if (t >= t_warm_end && t < t_meas_end) {
                st_ok++;
                add_sample(t - c->t_start);
            }
        }
        if (t < t_meas_end && !aborted) {
            c->state = ST_IDLE;  /* reopened by the main loop */
            return;
        }
    }
    ndone++;
}

static void on_close_frame(conn_t *c) {
    c->got_close = 1;
    if (!c->sent_close) {
        /* The server closed first: answer, then wait for its EOF. */
        if (opt_mode != M_CHURN || c->state != ST_CLOSING) st_unexpected_closes++;
        c->state = ST_OPEN;
        start_close(c);
    }
    /* RFC 6455 7.1.1: the server closes TCP first; we wait for EOF. */
}

/* ---- frame parsing ---------------------------------------------------- */

static int handle_handshake(conn_t *c) {
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end) {
        if (c->rlen > 16384) return -1;
        return 0;
    }
    size_t hlen = end + 4 - c->rbuf;
    int ok = c->rlen >= 12 && memcmp(c->rbuf, "HTTP/1.1 101", 12) == 0 &&
             memmem(c->rbuf, hlen, WS_ACCEPT, strlen(WS_ACCEPT)) != NULL;
    if (!ok) return -1;
    memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
    c->rlen -= hlen;
    c->state = ST_OPEN;
    if (opt_socketio) {
        c->sio_pending = 1;  /* still in flight until Socket.IO's connect is acknowledged */
        return 1;
    }
    inflight--;
    on_open(c);
    return 1;
}

/* Engine.IO / Socket.IO packets: open (0), ping (2), connect (40), error (44). Returns
   1 if the packet was one of them, 0 for an event (42) the mode reads. */
static int socketio_packet(conn_t *c, const char *data, size_t len) {
    if (len == 1 && data[0] == '2') {
        send_frame(c, 0x1, "3", 1);
        return 1;
    }
    if (len >= 1 && data[0] == '0') {
        send_frame(c, 0x1, "40", 2);
        return 1;
    }
    if (len >= 2 && data[0] == '4' && data[1] == '0') {
        if (c->sio_pending) {
            c->sio_pending = 0;
            inflight--;
            on_open(c);
        }
        return 1;
    }
    if (len >= 2 && data[0] == '4' && data[1] == '2') return 0;
    st_protocol_errors++;
    return 1;
}

static void deliver(conn_t *c, int opcode, char *data, size_t len) {
    if (opcode == 0x1) {
        if (!opt_socketio || !socketio_packet(c, data, len)) on_text(c, data, len);
    } else {
        st_protocol_errors++;
    }  /* binary frames are not used */
}

/* Returns -1 if the connection was closed. */
static int parse_frames(conn_t *c) {
    size_t off = 0;
    while (c->state == ST_OPEN || c->state == ST_CLOSING) {
        unsigned char *p = (unsigned char *)c->rbuf + off;
        size_t avail = c->rlen - off;
        if (avail < 2) break;
        int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (len > (1u << 26)) {
            st_protocol_errors++;
            on_closed(c, 0);
            return -1;
        }
        size_t mh = masked ? 4 : 0;
        if (avail < h + mh + len) break;
        char *data = (char *)p + h + mh;
        if (masked) {  /* servers must not mask, but be lenient */
            st_protocol_errors++;
            for (uint64_t i = 0; i < len; i++) data[i] ^= p[h + (i & 3)];
        }
        off += h + mh + len;
        if (op >= 0x8) {
            if (op == 0x9) send_frame(c, 0xA, data, len);
            else if (op == 0x8) on_close_frame(c);
        } else if (op != 0x0 && fin && !c->flen) {
            deliver(c, op, data, len);
        } else if (op == 0x0 && !c->flen) {
            st_protocol_errors++;  /* continuation without a first fragment */
        } else {
            if (op != 0x0) {  /* first fragment: remember the opcode in byte 0 */
                c->flen = 0;
                if (c->fcap < len + 1) {
                    c->fcap = len + 4096;
                    c->frag = xrealloc(c->frag, c->fcap);
                }
                c->frag[c->flen++] = (char)op;
            }
            if (c->flen + len > c->fcap) {
                c->fcap = (c->flen + len) * 2;
                c->frag = xrealloc(c->frag, c->fcap);
            }
            memcpy(c->frag + c->flen, data, len);
            c->flen += len;
            if (fin) {
                size_t fl = c->flen;
                c->flen = 0;
                deliver(c, c->frag[0], c->frag + 1, fl - 1);
            }
        }
        if (c->state == ST_DONE || c->state == ST_IDLE) return -1;
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

static void on_readable(conn_t *c) {
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            c->rcap = c->rcap ? c->rcap * 2 : 8192;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
        ssize_t k = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (k == 0) {
            int clean = c->got_close;
            if (c->state == ST_HANDSHAKE) st_handshake_errors++;
            on_closed(c, clean);
            return;
        }
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            if (c->state == ST_HANDSHAKE) st_handshake_errors++;
            on_closed(c, c->got_close);
            return;
        }
        c->rlen += k;
        if ((size_t)k < 4096) break;
    }
    if (c->state == ST_HANDSHAKE) {
        int r = handle_handshake(c);
        if (r < 0) {
            st_handshake_errors++;
            on_closed(c, 0);
            return;
        }
        if (r == 0) return;
    }
    parse_frames(c);
}

static void on_writable(conn_t *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            st_connect_errors++;
            on_closed(c, 0);
            return;
        }
        ep_set(c, 0);
        send_handshake(c);
        return;
    }
    if (conn_flush(c) < 0) on_closed(c, 0);
}

/* ---- main loop -------------------------------------------------------- */

static void open_more(void) {
    double t = now_s();
    if (opt_mode == M_CHURN) {
        if (t_measure_started == 0) begin_window(t);
        for (int i = 0; i < nconns; i++) {
            if (conns[i].state != ST_IDLE) continue;
            if (t < t_meas_end) {
                conn_open(&conns[i]);
            } else {
                conns[i].state = ST_DONE;
                ndone++;
            }
        }
        return;
    }
    while (next_to_open < nconns && inflight < opt_inflight) {
        conn_t *c = &conns[next_to_open++];
        conn_open(c);
    }
}

static void print_rusage_json(FILE *f, struct rusage *a, struct rusage *b, const char *prefix) {
    double ua = a ? a->ru_utime.tv_sec + a->ru_utime.tv_usec / 1e6 : 0;
    double sa = a ? a->ru_stime.tv_sec + a->ru_stime.tv_usec / 1e6 : 0;
    double ub = b->ru_utime.tv_sec + b->ru_utime.tv_usec / 1e6;
    double sb = b->ru_stime.tv_sec + b->ru_stime.tv_usec / 1e6;
    fprintf(f, "\"%scpu_user_s\": %.4f, \"%scpu_sys_s\": %.4f, \"%scpu_s\": %.4f", prefix, ub - ua, prefix,
            sb - sa, prefix, (ub - ua) + (sb - sa));
}

static double cpu_of(struct rusage *r) {
    return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 + r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

/* The end of the idle and broadcast modes: close every connection cleanly... */
static void start_close_all(double t) {
    t_close_deadline = t + CLOSE_GRACE;
    for (int i = 0; i < nconns; i++) start_close(&conns[i]);
}

/* ...and say when all are closed, counting those still open after CLOSE_GRACE. */
static int all_closed(double t) {
    int left = 0;
    for (int i = 0; i < nconns; i++) left += conns[i].state != ST_DONE;
    if (!left) return 1;
    if (t <= t_close_deadline) return 0;
    for (int i = 0; i < nconns; i++)
        if (conns[i].state != ST_DONE) {
            st_close_timeouts++;
            on_closed(&conns[i], 0);
        }
    return 1;
}

static void tick(double t) {
    if (t > hard_deadline && !aborted) {
        aborted = 1;
        abort_reason = "timeout";
        finished = 1;
        return;
    }
    switch (opt_mode) {
    case M_PINGPONG:
    case M_CHURN:
        if (!window_started && t_measure_started && t >= t_warm_end) {
            window_started = 1;
            getrusage(RUSAGE_SELF, &ru_meas_start);
        }
        if (window_started && !window_done && t >= t_meas_end) {
            window_done = 1;
            getrusage(RUSAGE_SELF, &ru_meas_end);
        }
        if (opt_mode == M_PINGPONG && !t_measure_started && nopen && nopen + nfailed == nconns) {
            /* every connection is open (or failed): start all of them at once */
            begin_window(t);
            for (int i = 0; i < nconns; i++)
                if (conns[i].state == ST_OPEN) send_echo(&conns[i], 0, 1);
        }
        if (t_measure_started && t > t_meas_end + CLOSE_GRACE) {
            for (int i = 0; i < nconns; i++)
                if (conns[i].state != ST_DONE && conns[i].state != ST_IDLE) {
                    st_close_timeouts++;
                    on_closed(&conns[i], 0);
                } else if (conns[i].state == ST_IDLE) {
                    conns[i].state = ST_DONE;
                    ndone++;
                }
        }
        if (ndone >= nconns && (t_measure_started || opt_mode == M_PINGPONG)) finished = 1;
        break;
    case M_IDLE:
        if (idle_phase == 0 && next_to_open == nconns && inflight == 0 &&
            (!opt_idle_echo || nsynced == nopen)) {
            idle_phase = 1;
            t_ready = t;
            t_hold_end = t + opt_duration;
            printf("{\"event\": \"ready\", \"open\": %d, \"failed\": %d, \"open_s\": %.3f}\n", nopen,
                   nconns - nopen, t - t_begin);
            fflush(stdout);
        }
        if (idle_phase == 1 && t >= t_hold_end) idle_phase = 2;
        if (idle_phase == 2) {
            idle_phase = 3;
            start_close_all(t);
        }
        if (idle_phase == 3 && all_closed(t)) finished = 1;
        break;
    case M_BROADCAST: {
        conn_t *trig = &conns[nconns - 1];
        if (bc_phase == 0 && next_to_open == nconns && inflight == 0) {
            if (nsynced == nopen) {
                if (nopen < nconns || trig->state != ST_OPEN) {
                    aborted = 1;
                    abort_reason = "connections failed";
                    bc_phase = 4;
                } else {
                    bc_phase = 1;
                    bc_next_at = t + 0.2;
                }
            }
        }
        if (bc_phase == 1 && t >= bc_next_at) {
            printf("{\"event\": \"ready\", \"open\": %d, \"open_s\": %.3f}\n", nopen, t - t_begin);
            fflush(stdout);
            bc_phase = opt_wait_stdin ? 2 : 3;
            bc_next_at = t;
            if (bc_phase == 3) getrusage(RUSAGE_SELF, &ru_meas_start);
        }
        if (bc_phase == 3) {
            if (bc_in_round && t > bc_round_deadline) {
                if (bc_round >= opt_warmup_rounds) {
                    bc_times[bc_nrecorded] = -1;
                    bc_first[bc_nrecorded] = bc_received ? bc_t_first - bc_t0 : -1;
                    bc_missed[bc_nrecorded] = nmembers - bc_received;
                    bc_nrecorded++;
                }
                bc_in_round = 0;
                bc_round++;
                bc_next_at = t + opt_gap;
            }
            if (!bc_in_round && bc_round >= opt_count + opt_warmup_rounds) {
                getrusage(RUSAGE_SELF, &ru_meas_end);
                bc_phase = 4;
                if (opt_wait_stdin) {  /* let the caller read counters before the closes */
                    printf("{\"event\": \"done\", \"rounds\": %ld}\n", bc_round);
                    fflush(stdout);
                    bc_phase = 6;
                }
            } else if (!bc_in_round && t >= bc_next_at) {
                int len = snprintf(msgbuf, msgcap,
                                   "{\"type\": \"broadcast\", \"seq\": %ld, \"payload\": \"%.*s\"}", bc_round,
                                   opt_payload > 60 ? 60 : opt_payload, payload_str);
                bc_in_round = 1;
                bc_received = 0;
                bc_round_deadline = t + ROUND_TIMEOUT;
                bc_t0 = now_s();
                send_text(trig, msgbuf, len);
            }
        }
        if (bc_phase == 4) {
            bc_phase = 5;
            start_close_all(t);
        }
        if (bc_phase == 5 && all_closed(t)) finished = 1;
        break;
    }
    }
}

static void on_stdin(void) {
    char buf[256];
    ssize_t k = read(0, buf, sizeof buf);
    if (k <= 0) epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
    if (opt_mode == M_IDLE && idle_phase == 1) idle_phase = 2;
    if (opt_mode == M_BROADCAST && bc_phase == 2) {
        bc_phase = 3;
        bc_next_at = now_s();
        getrusage(RUSAGE_SELF, &ru_meas_start);
    } else if (opt_mode == M_BROADCAST && bc_phase == 6) {
        bc_phase = 4;
    }
}

static void raise_nofile(int need) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= (rlim_t)need) return;
    if (rl.rlim_max < (rlim_t)need) rl.rlim_max = need;  /* works as root */
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((int)rl.rlim_cur < need)
            die("need %d file descriptors, RLIMIT_NOFILE allows %ld", need, (long)rl.rlim_cur);
    }
}

static const char *mode_name(void) {
    static const char *names[] = {"pingpong", "churn", "idle", "broadcast"};
    return names[opt_mode];
}

static void report(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = now_s() - t_begin;
    FILE *f = stdout;
    fprintf(f, "{\"mode\": \"%s\", \"connections\": %d, \"ok\": %s", mode_name(), opt_conns,
            aborted ? "false" : "true");
    if (aborted) fprintf(f, ", \"error\": \"%s\"", abort_reason);
    fprintf(f, ", \"opened\": %d", nopen);
    fprintf(f, ", \"connect_errors\": %ld, \"handshake_errors\": %ld, \"protocol_errors\": %ld", st_connect_errors,
            st_handshake_errors, st_protocol_errors);
    fprintf(f, ", \"mismatches\": %ld, \"unexpected_closes\": %ld, \"close_timeouts\": %ld", st_mismatches,
            st_unexpected_closes, st_close_timeouts);
    if (opt_mode == M_PINGPONG || opt_mode == M_CHURN) {
        double win = opt_duration;
        qsort(samples, nsamples, sizeof *samples, cmp_double);
        fprintf(f, ", \"duration_s\": %.3f, \"warmup_s\": %.3f, \"completed\": %ld, \"completed_total\": %ld",
                opt_duration, opt_warmup, st_ok, st_total_ok);
        fprintf(f, ", \"rate\": %.1f", st_ok / win);
        fprintf(f, ", \"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f", percentile(samples, nsamples, 0.5) * 1e3,
                percentile(samples, nsamples, 0.99) * 1e3);
        if (window_done) {
            fprintf(f, ", ");
            print_rusage_json(f, &ru_meas_start, &ru_meas_end, "window_");
            fprintf(f, ", \"window_cpu_pct\": %.1f", 100.0 * (cpu_of(&ru_meas_end) - cpu_of(&ru_meas_start)) / win);
        }
    }
    if (opt_mode == M_IDLE) fprintf(f, ", \"hold_s\": %.3f", t_ready ? now_s() - t_ready : 0.0);
    if (opt_mode == M_BROADCAST) {
        fprintf(f, ", \"members\": %d, \"rounds\": %ld, \"times_ms\": [", nmembers, bc_nrecorded);
        for (long i = 0; i < bc_nrecorded; i++)
            fprintf(f, "%s%.3f", i ? ", " : "", bc_times[i] < 0 ? -1.0 : bc_times[i] * 1e3);
        fprintf(f, "], \"first_ms\": [");
        for (long i = 0; i < bc_nrecorded; i++)
            fprintf(f, "%s%.3f", i ? ", " : "", bc_first[i] < 0 ? -1.0 : bc_first[i] * 1e3);
        long missed = 0, ok_rounds = 0;
        for (long i = 0; i < bc_nrecorded; i++) {
            missed += bc_missed[i];
            if (bc_times[i] >= 0) samples[ok_rounds++] = bc_times[i];
        }
        qsort(samples, ok_rounds, sizeof *samples, cmp_double);
        fprintf(f, "], \"missed\": %ld, \"median_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f", missed,
                percentile(samples, ok_rounds, 0.5) * 1e3, ok_rounds ? samples[0] * 1e3 : -1.0,
                ok_rounds ? samples[ok_rounds - 1] * 1e3 : -1.0);
        if (ru_meas_end.ru_utime.tv_sec || ru_meas_end.ru_utime.tv_usec || ru_meas_end.ru_stime.tv_sec ||
            ru_meas_end.ru_stime.tv_usec) {
            fprintf(f, ", ");
            print_rusage_json(f, &ru_meas_start, &ru_meas_end, "window_");
        }
    }
    fprintf(f, ", ");
    print_rusage_json(f, NULL, &ru, "");
    fprintf(f, ", \"wall_s\": %.3f, \"cpu_pct\": %.1f}\n", wall, 100.0 * cpu_of(&ru) / wall);
    fflush(f);
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --mode pingpong|churn|idle|broadcast [options]\n"
            "  --host 127.0.0.1     loopback address (127.0.0.0/8 only)\n"
            "  --port 8000          server port; --ports 8001,8002 spreads broadcast members\n"
            "  --path /echo         WebSocket path (members' path in broadcast mode)\n"
            "  --trigger-path /trigger  broadcast trigger path (on the first port)\n"
            "  --connections N      connections (churn: workers; broadcast: members)\n"
            "  --duration S         measured seconds (idle: hold time)\n"
            "  --warmup S           unmeasured seconds before the window\n"
            "  --count N            broadcast rounds recorded\n"
            "  --warmup-rounds N    broadcast rounds not recorded (default 2)\n"
            "  --gap S              pause between broadcast rounds (default 0.05)\n"
            "  --payload N          payload length in bytes (default 100, at most 1000000)\n"
            "  --inflight N         concurrent connects (default 200)\n"
            "  --header 'K: V'      extra handshake header (repeatable)\n"
            "  --handshake KIND     minimal (default: the handshake's own headers), go (adds\n"
            "                       a Go User-Agent and a same-origin Origin) or browser\n"
            "                       (a same-origin Origin, User-Agent, Accept-* and cache\n"
            "                       headers)\n"
            "  --sources N          bind connections to 127.0.0.1..127.0.0.N in turn (for more\n"
            "                       connections than one address has ephemeral ports)\n"
            "  --protocol KIND      websocket (default) or socketio: Engine.IO 4 open and\n"
            "                       Socket.IO connect, messages as the event [\"msg\", ...]\n"
            "  --idle-echo          idle: each connection exchanges one echo before idling\n"
            "                       (ready once every echo is back)\n"
            "  --close KIND         churn: wait (default: for the server's close frame and\n"
            "                       TCP close) or abrupt (close TCP after sending the close)\n"
            "  --wait-stdin         idle/broadcast: after {\"event\": ...} lines (ready; broadcast\n"
            "                       also done, before closing) wait for a line on stdin\n"
            "  --timeout S          hard limit on the whole run (default 120)\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct option longopts[] = {
        {"mode", required_argument, 0, 'm'},        {"host", required_argument, 0, 'H'},
        {"port", required_argument, 0, 'p'},        {"ports", required_argument, 0, 'P'},
        {"path", required_argument, 0, 'u'},        {"trigger-path", required_argument, 0, 'T'},
        {"connections", required_argument, 0, 'c'}, {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},      {"count", required_argument, 0, 'n'},
        {"warmup-rounds", required_argument, 0, 'r'}, {"gap", required_argument, 0, 'g'},
        {"payload", required_argument, 0, 'l'},     {"inflight", required_argument, 0, 'i'},
        {"header", required_argument, 0, 'h'},      {"wait-stdin", no_argument, 0, 'W'},
        {"timeout", required_argument, 0, 't'},     {"handshake", required_argument, 0, 'S'},
        {"close", required_argument, 0, 'C'},       {"idle-echo", no_argument, 0, 'E'},
        {"sources", required_argument, 0, 'o'},     {"protocol", required_argument, 0, 'x'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (!strcmp(optarg, "pingpong")) opt_mode = M_PINGPONG;
            else if (!strcmp(optarg, "churn")) opt_mode = M_CHURN;
            else if (!strcmp(optarg, "idle")) opt_mode = M_IDLE;
            else if (!strcmp(optarg, "broadcast")) opt_mode = M_BROADCAST;
            else usage();
            break;
        case 'H': snprintf(opt_host, sizeof opt_host, "%s", optarg); break;
        case 'p': opt_ports[0] = atoi(optarg); opt_nports = 1; break;
        case 'P': {
            opt_nports = 0;
            char *s = strdup(optarg), *tok, *save = NULL;
            for (tok = strtok_r(s, ",", &save); tok && opt_nports < MAX_PORTS; tok = strtok_r(NULL, ",", &save))
                opt_ports[opt_nports++] = atoi(tok);
            break;
        }
        case 'u': opt_path = optarg; break;
        case 'T': opt_trigger_path = optarg; break;
        case 'c': opt_conns = atoi(optarg); break;
        case 'd': opt_duration = atof(optarg); break;
        case 'w': opt_warmup = atof(optarg); break;
        case 'n': opt_count = atol(optarg); break;
        case 'r': opt_warmup_rounds = atol(optarg); break;
        case 'g': opt_gap = atof(optarg); break;
        case 'l': opt_payload = atoi(optarg); break;
        case 'i': opt_inflight = atoi(optarg); break;
        case 'h':
            if (opt_nheaders == MAX_HEADERS) die("too many --header");
            opt_headers[opt_nheaders++] = optarg;
            break;
        case 'W': opt_wait_stdin = 1; break;
        case 'E': opt_idle_echo = 1; break;
        case 'o': opt_sources = atoi(optarg); break;
        case 'x':
            if (!strcmp(optarg, "websocket")) opt_socketio = 0;
            else if (!strcmp(optarg, "socketio")) opt_socketio = 1;
            else usage();
            break;
        case 'S':
            if (!strcmp(optarg, "minimal")) opt_handshake = HS_MINIMAL;
            else if (!strcmp(optarg, "go")) opt_handshake = HS_GO;
            else if (!strcmp(optarg, "browser")) opt_handshake = HS_BROWSER;
            else usage();
            break;
        case 'C':
            if (!strcmp(optarg, "wait")) opt_close_abrupt = 0;
            else if (!strcmp(optarg, "abrupt")) opt_close_abrupt = 1;
            else usage();
            break;
        case 't': opt_timeout = atof(optarg); break;
        default: usage();
        }
    }
    if (opt_conns < 1 || opt_nports < 1 || opt_payload < 0 || opt_payload > 1000000 || opt_duration < 0 || opt_sources < 1 || opt_sources > 254 ||
        opt_timeout <= 0 || opt_count < 1 || opt_inflight < 1)
        usage();

    struct in_addr ia;
    if (inet_pton(AF_INET, opt_host, &ia) != 1) die("--host must be an IPv4 address");
    if ((ntohl(ia.s_addr) >> 24) != 127) die("--host must be a loopback address (127.0.0.0/8)");
    for (int i = 0; i < opt_nports; i++) {
        if (opt_ports[i] <= 0 || opt_ports[i] > 65535) die("bad port");
        addrs[i].sin_family = AF_INET;
        addrs[i].sin_port = htons(opt_ports[i]);
        addrs[i].sin_addr = ia;
    }
    signal(SIGPIPE, SIG_IGN);

    payload_str = malloc(opt_payload + 1);
    for (int i = 0; i < opt_payload; i++) payload_str[i] = 'x';
    payload_str[opt_payload] = 0;
    msgcap = opt_payload + 256;
    msgbuf = malloc(msgcap);

    nconns = opt_conns + (opt_mode == M_BROADCAST ? 1 : 0);
    nmembers = opt_conns;
    raise_nofile(nconns + 64);
    conns = calloc(nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        c->fd = -1;
        c->idx = i;
        c->state = ST_IDLE;
        c->role = R_ECHO;
        c->path = opt_path;
        c->port = opt_ports[0];
        c->n = -1;
        if (opt_mode == M_BROADCAST) {
            c->role = i < nmembers ? R_MEMBER : R_TRIGGER;
            /* members spread evenly over the ports: the first half on the first port, ... */
            c->port = i < nmembers ? opt_ports[(long)i * opt_nports / nmembers] : opt_ports[0];
            if (c->role == R_TRIGGER) c->path = opt_trigger_path;
        }
    }
    if (opt_mode == M_BROADCAST) {
        bc_times = calloc(opt_count, sizeof *bc_times);
        bc_first = calloc(opt_count, sizeof *bc_first);
        bc_missed = calloc(opt_count, sizeof *bc_missed);
        samples = calloc(opt_count, sizeof *samples);
    }

    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1: %s", strerror(errno));
    if (opt_wait_stdin || opt_mode == M_IDLE) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
        epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);  /* may fail if stdin is a file: then hold times out */
    }
    t_begin = now_s();
    hard_deadline = t_begin + opt_timeout;

    struct epoll_event evs[MAX_EVENTS];
    while (!finished) {
        open_more();
        double t = now_s();
        tick(t);
        if (finished) break;
        int n = epoll_wait(ep, evs, MAX_EVENTS, opt_mode == M_BROADCAST ? 1 : 10);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == UINT32_MAX) {
                on_stdin();
                continue;
            }
            conn_t *c = &conns[id];
            if (c->state == ST_DONE || c->state == ST_IDLE || c->fd < 0) continue;
            if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                if (c->state == ST_CONNECTING || (evs[i].events & EPOLLOUT)) on_writable(c);
                if (c->state == ST_DONE || c->state == ST_IDLE || c->fd < 0) continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
    }
    report();
    return aborted ? 1 : 0;
}
