/* fuse_fetch.c — see fuse_fetch.h. One reader thread takes the fetcher's
 * answers and wakes the FUSE worker thread waiting for each; writes of
 * requests are serialized by a lock (one line per write(2) loop). */
#define _GNU_SOURCE
#include "fuse_fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h> /* fuse_log */

typedef struct waiter {
    uint64_t id;
    int state; /* 0 waiting, 1 ok, 2 failed */
    struct waiter *next;
} waiter;

struct vfetch {
    int fd;
    pthread_t reader;
    int reader_started;
    pthread_mutex_t lock; /* waiters, dead, next_id, counts */
    pthread_cond_t answered;
    pthread_mutex_t write_lock;
    waiter *waiting;
    uint64_t next_id;
    int dead;
    unsigned long asked, failed;
};

static void settle(vfetch *f, uint64_t id, int ok) {
    pthread_mutex_lock(&f->lock);
    for (waiter *w = f->waiting; w; w = w->next)
        if (w->id == id) { w->state = ok ? 1 : 2; break; }
    pthread_cond_broadcast(&f->answered);
    pthread_mutex_unlock(&f->lock);
}

static void take_line(vfetch *f, char *line) {
    char *end = NULL;
    errno = 0;
    unsigned long long id = strtoull(line, &end, 10);
    if (errno != 0 || end == line || *end != ' ') return;
    const char *rest = end + 1;
    if (strcmp(rest, "ok") == 0) settle(f, id, 1);
    else settle(f, id, 0); /* "error …": the fetcher logged why */
}

static void *read_answers(void *arg) {
    vfetch *f = arg;
    char buf[8192];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(f->fd, buf + used, sizeof buf - used - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += (size_t)n;
        buf[used] = '\0';
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', used - (size_t)(start - buf)))) {
            *nl = '\0';
            take_line(f, start);
            start = nl + 1;
        }
        used -= (size_t)(start - buf);
        memmove(buf, start, used);
        if (used == sizeof buf - 1) used = 0; /* a line longer than any answer: drop it */
    }
    pthread_mutex_lock(&f->lock);
    int was_dead = f->dead;
    f->dead = 1;
    pthread_cond_broadcast(&f->answered);
    pthread_mutex_unlock(&f->lock);
    if (!was_dead) fuse_log(FUSE_LOG_WARNING, "velo: the object fetcher is gone: objects not yet in the store now fail to open (EIO)\n");
    return NULL;
}

vfetch *vfetch_new(int fd) {
    vfetch *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->fd = fd;
    f->next_id = 1;
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->write_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->answered, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&f->reader, NULL, read_answers, f);
    if (rc != 0) {
        pthread_cond_destroy(&f->answered);
        pthread_mutex_destroy(&f->lock);
        pthread_mutex_destroy(&f->write_lock);
        free(f);
        errno = rc;
        return NULL;
    }
    f->reader_started = 1;
    return f;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vfetch_object(vfetch *f, const char *name) {
    waiter me = { 0 };
    pthread_mutex_lock(&f->lock);
    f->asked++;
    if (f->dead) {
        f->failed++;
        pthread_mutex_unlock(&f->lock);
        return -EIO;
    }
    me.id = f->next_id++;
    me.next = f->waiting;
    f->waiting = &me;
    pthread_mutex_unlock(&f->lock);

    char line[256];
    int len = snprintf(line, sizeof line, "%llu %s\n", (unsigned long long)me.id, name);
    pthread_mutex_lock(&f->write_lock);
    int sent = len > 0 && (size_t)len < sizeof line ? send_all(f->fd, line, (size_t)len) : -1;
    pthread_mutex_unlock(&f->write_lock);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += VFETCH_TIMEOUT_S;
    pthread_mutex_lock(&f->lock);
    int timed_out = 0;
    while (sent == 0 && me.state == 0 && !f->dead && !timed_out)
        timed_out = pthread_cond_timedwait(&f->answered, &f->lock, &deadline) == ETIMEDOUT;
    for (waiter **p = &f->waiting; *p; p = &(*p)->next)
        if (*p == &me) { *p = me.next; break; }
    if (me.state != 1) f->failed++;
    pthread_mutex_unlock(&f->lock);
    if (timed_out && me.state == 0) fuse_log(FUSE_LOG_WARNING, "velo: no answer from the object fetcher for %s within %d s (EIO)\n", name, VFETCH_TIMEOUT_S);
    return me.state == 1 ? 0 : -EIO;
}

void vfetch_counts(vfetch *f, unsigned long *asked, unsigned long *failed) {
    pthread_mutex_lock(&f->lock);
    *asked = f->asked;
    *failed = f->failed;
    pthread_mutex_unlock(&f->lock);
}

void vfetch_cancel(vfetch *f) {
    pthread_mutex_lock(&f->lock);
    f->dead = 1;
    pthread_cond_broadcast(&f->answered);
    pthread_mutex_unlock(&f->lock);
}

void vfetch_free(vfetch *f) {
    if (!f) return;
    vfetch_cancel(f); /* no "gone" warning: we are closing it */
    shutdown(f->fd, SHUT_RDWR);
    if (f->reader_started) pthread_join(f->reader, NULL);
    close(f->fd);
    pthread_cond_destroy(&f->answered);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->write_lock);
    free(f);
}
