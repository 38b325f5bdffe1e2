/* Poll an epoll set for a short while before the event loop sleeps
 * (issue #3 "Speed"; README "Benchmarks"; see `busypoll.py`).
 *
 * spin(epfd, ns) -> bool: calls epoll_wait(epfd, timeout 0) until one of the
 * set's descriptors is ready (True) or `ns` nanoseconds have passed (False),
 * without the GIL, so the process's other threads run meanwhile. asyncio
 * registers its descriptors level-triggered, so nothing is consumed here:
 * the loop's own select() that follows finds the same events.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static PyObject *spin(PyObject *self, PyObject *args) {
    int epfd;
    long long ns;
    (void)self;
    if (!PyArg_ParseTuple(args, "iL:spin", &epfd, &ns)) return NULL;
    int ready = 0, failed = 0;
    Py_BEGIN_ALLOW_THREADS
    struct epoll_event event;
    int64_t end = now_ns() + ns;
    do {
        int n = epoll_wait(epfd, &event, 1, 0);
        if (n > 0) {
            ready = 1;
            break;
        }
        if (n < 0 && errno != EINTR) {
            failed = errno;
            break;
        }
    } while (now_ns() < end);
    Py_END_ALLOW_THREADS
    if (failed) {
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBool_FromLong(ready);
}

static PyMethodDef methods[] = {
    {"spin", spin, METH_VARARGS, "spin(epfd, ns) -> whether a descriptor became ready within ns"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_poll", "Busy-polling of an epoll set before sleeping (see busypoll.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__poll(void) { return PyModule_Create(&module); }
