/* epoll_wait that polls for a short while before it sleeps
 * (issue #3 "Speed"; README "Benchmarks"; see `busypoll.py`).
 *
 * poll(epfd, timeout, maxevents, spin_ns) -> [(fd, events), ...] answers as
 * select.epoll.poll(timeout, maxevents) does (timeout in seconds, negative:
 * no limit), except that before it blocks it calls epoll_wait with a zero
 * timeout again and again, for up to spin_ns nanoseconds (never past the
 * timeout), and returns as soon as a descriptor is ready. The GIL is let go
 * once for the whole call, so the process's other threads run meanwhile and
 * the loop takes the GIL back once per turn, as with epoll.poll.
 *
 * A zero-timeout epoll_wait that finds events returns them, as the blocking
 * one would; asyncio registers its descriptors level-triggered (never
 * EPOLLET or EPOLLONESHOT), so nothing is seen differently than without
 * polling. Signals: a zero-timeout epoll_wait is never interrupted, so a
 * signal that arrives while polling would only be seen at the next wake-up;
 * hence the Python handlers get a chance (PyErr_CheckSignals, with the GIL
 * taken back once) between the polling and the blocking wait. A signal
 * during the blocking wait (EINTR) runs them and then waits for the rest of
 * the timeout, as epoll.poll does (PEP 475).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

#define MAX_SPIN_NS 10000000000LL  /* 10 s: more is never meant */
#define MAX_TIMEOUT_S 1e9          /* ~31 years: longer is "no limit" */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds left until deadline, rounded up (-1: no deadline). */
static int ms_left(int64_t deadline) {
    if (deadline < 0) return -1;
    int64_t left = deadline - now_ns();
    if (left <= 0) return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Block until an event or the deadline. epoll_pwait2 (Linux 5.11, glibc
 * 2.35) takes the time left in nanoseconds; epoll_wait only whole
 * milliseconds, rounded up, which after a spin would wake the loop up to a
 * millisecond after the timer the loop asked for. */
static int wait_until(int epfd, struct epoll_event *events, int maxevents, int64_t deadline) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    static atomic_int no_pwait2; /* set once if the kernel (or a seccomp filter) refuses it */
    if (!no_pwait2) {
        struct timespec left, *limit = NULL;
        if (deadline >= 0) {
            int64_t ns = deadline - now_ns();
            if (ns < 0) ns = 0;
            left.tv_sec = (time_t)(ns / 1000000000);
            left.tv_nsec = (long)(ns % 1000000000);
            limit = &left;
        }
        int n = epoll_pwait2(epfd, events, maxevents, limit, NULL);
        if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
        no_pwait2 = 1;
    }
#endif
    return epoll_wait(epfd, events, maxevents, ms_left(deadline));
}

static PyObject *poll(PyObject *self, PyObject *args) {
    int epfd, maxevents;
    double timeout;
    long long spin_ns;
    (void)self;
    if (!PyArg_ParseTuple(args, "idiL:poll", &epfd, &timeout, &maxevents, &spin_ns)) return NULL;
    if (isnan(timeout)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be a number");
        return NULL;
    }
    if (maxevents <= 0) maxevents = 1023; /* epoll.poll's default: FD_SETSIZE - 1 */
    if (spin_ns > MAX_SPIN_NS) spin_ns = MAX_SPIN_NS;
    struct epoll_event *events = PyMem_New(struct epoll_event, (size_t)maxevents);
    if (events == NULL) return PyErr_NoMemory();
    int64_t deadline = -1; /* no limit */
    if (timeout >= 0 && timeout < MAX_TIMEOUT_S) deadline = now_ns() + (int64_t)(timeout * 1e9);
    int n, err, signalled;
    for (;;) {
        n = 0;
        err = 0;
        signalled = 0;
        Py_BEGIN_ALLOW_THREADS
        if (spin_ns > 0 && timeout != 0) {
            int64_t end = now_ns() + spin_ns;
            if (deadline >= 0 && deadline < end) end = deadline;
            do {
                n = epoll_wait(epfd, events, maxevents, 0);
            } while (n == 0 && now_ns() < end);
            if (n == 0) { /* nothing came: run the signal handlers a signal meanwhile left pending */
                Py_BLOCK_THREADS
                signalled = PyErr_CheckSignals();
                Py_UNBLOCK_THREADS
            }
        }
        if (n == 0 && signalled == 0) n = wait_until(epfd, events, maxevents, deadline);
        if (n < 0) err = errno;
        Py_END_ALLOW_THREADS
        if (signalled < 0) { /* a handler raised (KeyboardInterrupt) */
            PyMem_Free(events);
            return NULL;
        }
        if (n >= 0 || err != EINTR) break;
        if (PyErr_CheckSignals() < 0) {
            PyMem_Free(events);
            return NULL;
        }
        spin_ns = 0; /* after a signal, just wait for what is left */
    }
    PyObject *out = NULL;
    if (n < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else if ((out = PyList_New(n)) != NULL) {
        for (int i = 0; i < n; i++) {
            PyObject *item = Py_BuildValue("(iI)", events[i].data.fd, (unsigned int)events[i].events);
            if (item == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, item);
        }
    }
    PyMem_Free(events);
    return out;
}

static PyMethodDef methods[] = {
    {"poll", poll, METH_VARARGS,
     "poll(epfd, timeout, maxevents, spin_ns) -> [(fd, events)]: epoll.poll, polling up to spin_ns first"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_poll", "epoll_wait that polls before it sleeps (see busypoll.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__poll(void) { return PyModule_Create(&module); }
