/*
 * gmbench: the libgearman contender of the gearman-proto benchmarks.
 *
 * Same command line and output as the Python contenders in
 * benchmarks/contenders/ (see _common.py there for the measured windows):
 *
 *   gmbench --role client|worker --scenario fg|pipe|bg|drain|large|fill
 *           --n N --address host:port [--payload-size S] [--timeout SECONDS]
 *
 * prints one JSON line: elapsed wall seconds of the measured window, CPU
 * seconds (getrusage) in it, jobs; or {"error": ...} and exit status != 0.
 *
 * Client: fg and large use gearman_client_do() per job; pipe adds N tasks
 * and runs them with one gearman_client_run_tasks(); bg uses
 * gearman_client_do_background() per job; fill (the drain's helper) adds N
 * background tasks and runs them at once. Worker: gearman_worker_work() per
 * job with a v1 callback that returns a malloc'd result (reversed, or a
 * copy for large).
 *
 * Build: cc -O2 -o gmbench gmbench.c -lgearman
 */

#define _POSIX_C_SOURCE 200809L

#include <libgearman-1.0/gearman.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char SMALL_PAYLOAD[] = "0123456789abcdef";

struct options {
    const char *role;
    const char *scenario;
    long n;
    char host[256];
    in_port_t port;
    size_t payload_size;
    double timeout;
};

struct window {
    struct timespec wall0;
    struct rusage usage0;
    double elapsed;
    double utime;
    double stime;
};

static struct options opts;

static void fail(const char *format, ...)
{
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    /* message never contains quotes or backslashes we did not put there */
    for (char *c = message; *c; c++) {
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
            *c = ' ';
        }
    }
    printf("{\"error\": \"%s\"}\n", message);
    fflush(stdout);
    _exit(1);
}

static void on_alarm(int signum)
{
    (void)signum;
    static const char line[] = "{\"error\": \"gmbench: timed out\"}\n";
    ssize_t ignored = write(STDOUT_FILENO, line, sizeof line - 1);
    (void)ignored;
    _exit(3);
}

static double seconds(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static void window_start(struct window *w)
{
    getrusage(RUSAGE_SELF, &w->usage0);
    clock_gettime(CLOCK_MONOTONIC, &w->wall0);
}

static void window_stop(struct window *w)
{
    struct timespec wall;
    struct rusage usage;
    clock_gettime(CLOCK_MONOTONIC, &wall);
    getrusage(RUSAGE_SELF, &usage);
    w->elapsed = (double)(wall.tv_sec - w->wall0.tv_sec) +
                 (double)(wall.tv_nsec - w->wall0.tv_nsec) / 1e9;
    w->utime = seconds(&usage.ru_utime) - seconds(&w->usage0.ru_utime);
    w->stime = seconds(&usage.ru_stime) - seconds(&w->usage0.ru_stime);
}

static void report(const struct window *w)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("{\"role\": \"%s\", \"scenario\": \"%s\", \"jobs\": %ld, \"payload_size\": %zu, "
           "\"elapsed\": %.9f, \"utime\": %.6f, \"stime\": %.6f, \"maxrss_kib\": %ld, "
           "\"pid\": %ld}\n",
           opts.role, opts.scenario, opts.n, opts.payload_size, w->elapsed, w->utime,
           w->stime, usage.ru_maxrss, (long)getpid());
    fflush(stdout);
}

static int is_large(void)
{
    return strcmp(opts.scenario, "large") == 0;
}

static const char *function_name(void)
{
    return is_large() ? "echo" : "reverse";
}

static char *make_payload(size_t size)
{
    char *payload = malloc(size ? size : 1);
    if (payload == NULL) {
        fail("out of memory for a %zu-byte payload", size);
    }
    if (size == sizeof SMALL_PAYLOAD - 1) {
        memcpy(payload, SMALL_PAYLOAD, size);
    } else {
        for (size_t i = 0; i < size; i++) {
            payload[i] = (char)(i & 0xff);
        }
    }
    return payload;
}

/* The worker's answer: the payload reversed, or echoed for "large". */
static void expected_into(char *out, const char *payload, size_t size)
{
    if (is_large()) {
        memcpy(out, payload, size);
    } else {
        for (size_t i = 0; i < size; i++) {
            out[i] = payload[size - 1 - i];
        }
    }
}

/* ------------------------------------------------------------------ client */

struct pipe_state {
    long completed;
    long wrong;
    const char *expected;
    size_t size;
};

static gearman_return_t on_complete(gearman_task_st *task)
{
    struct pipe_state *state = gearman_task_context(task);
    state->completed++;
    if (gearman_task_data_size(task) != state->size ||
        memcmp(gearman_task_data(task), state->expected, state->size) != 0) {
        state->wrong++;
    }
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    (void)task;
    fail("a task failed");
    return GEARMAN_WORK_FAIL;
}

static void do_one(gearman_client_st *client, const char *payload, const char *expected,
                   size_t size)
{
    size_t result_size = 0;
    gearman_return_t ret;
    void *result =
        gearman_client_do(client, function_name(), NULL, payload, size, &result_size, &ret);
    if (ret != GEARMAN_SUCCESS) {
        fail("gearman_client_do: %s", gearman_client_error(client));
    }
    if (result_size != size || memcmp(result, expected, result_size) != 0) {
        fail("a job answered wrongly (%zu bytes)", result_size);
    }
    free(result);
}

/* The warm-up job: always the 16-byte payload; it waits for the worker. */
static void warm_up(gearman_client_st *client)
{
    size_t size = sizeof SMALL_PAYLOAD - 1;
    char expected[sizeof SMALL_PAYLOAD];
    expected_into(expected, SMALL_PAYLOAD, size);
    do_one(client, SMALL_PAYLOAD, expected, size);
}

static void do_background(gearman_client_st *client, const char *payload)
{
    gearman_job_handle_t handle;
    gearman_return_t ret = gearman_client_do_background(client, function_name(), NULL, payload,
                                                        opts.payload_size, handle);
    if (ret != GEARMAN_SUCCESS) {
        fail("gearman_client_do_background: %s", gearman_client_error(client));
    }
}

static void run_tasks(gearman_client_st *client, const char *payload, const char *expected,
                      int background)
{
    struct pipe_state state = {0, 0, expected, opts.payload_size};
    for (long i = 0; i < opts.n; i++) {
        gearman_return_t ret;
        gearman_task_st *task;
        if (background) {
            task = gearman_client_add_task_background(client, NULL, &state, function_name(),
                                                      NULL, payload, opts.payload_size, &ret);
        } else {
            task = gearman_client_add_task(client, NULL, &state, function_name(), NULL,
                                           payload, opts.payload_size, &ret);
        }
        if (task == NULL || ret != GEARMAN_SUCCESS) {
            fail("gearman_client_add_task: %s", gearman_client_error(client));
        }
    }
    gearman_return_t ret = gearman_client_run_tasks(client);
    if (ret != GEARMAN_SUCCESS) {
        fail("gearman_client_run_tasks: %s", gearman_client_error(client));
    }
    if (!background && (state.completed != opts.n || state.wrong != 0)) {
        fail("%ld of %ld tasks completed, %ld answered wrongly", state.completed, opts.n,
             state.wrong);
    }
}

static void client_main(void)
{
    gearman_client_st *client = gearman_client_create(NULL);
    if (client == NULL) {
        fail("gearman_client_create failed");
    }
    if (gearman_client_add_server(client, opts.host, opts.port) != GEARMAN_SUCCESS) {
        fail("gearman_client_add_server: %s", gearman_client_error(client));
    }
    gearman_client_set_timeout(client, (int)(opts.timeout * 1000));
    gearman_client_add_options(client, GEARMAN_CLIENT_FREE_TASKS);
    gearman_client_set_complete_fn(client, on_complete);
    gearman_client_set_fail_fn(client, on_fail);

    char *payload = make_payload(opts.payload_size);
    char *expected = make_payload(opts.payload_size);
    expected_into(expected, payload, opts.payload_size);

    struct window w;
    if (strcmp(opts.scenario, "fill") == 0) {
        window_start(&w);
        run_tasks(client, payload, expected, 1);
        window_stop(&w);
    } else if (strcmp(opts.scenario, "bg") == 0) {
        do_background(client, payload); /* warm-up */
        window_start(&w);
        for (long i = 0; i < opts.n; i++) {
            do_background(client, payload);
        }
        window_stop(&w);
    } else if (strcmp(opts.scenario, "pipe") == 0) {
        warm_up(client);
        window_start(&w);
        run_tasks(client, payload, expected, 0);
        window_stop(&w);
    } else if (strcmp(opts.scenario, "fg") == 0 || is_large()) {
        warm_up(client);
        window_start(&w);
        for (long i = 0; i < opts.n; i++) {
            do_one(client, payload, expected, opts.payload_size);
        }
        window_stop(&w);
    } else {
        fail("the %s scenario has no client side", opts.scenario);
    }
    report(&w);
    free(payload);
    free(expected);
    gearman_client_free(client);
}

/* ------------------------------------------------------------------ worker */

static void *answer(gearman_job_st *job, void *context, size_t *result_size,
                    gearman_return_t *ret_ptr)
{
    (void)context;
    const char *workload = gearman_job_workload(job);
    size_t size = gearman_job_workload_size(job);
    char *result = malloc(size ? size : 1);
    if (result == NULL) {
        *ret_ptr = GEARMAN_WORK_FAIL;
        return NULL;
    }
    if (is_large()) {
        memcpy(result, workload, size);
    } else {
        for (size_t i = 0; i < size; i++) {
            result[i] = workload[size - 1 - i];
        }
    }
    *result_size = size;
    *ret_ptr = GEARMAN_SUCCESS;
    return result;
}

static void worker_main(void)
{
    int drain = strcmp(opts.scenario, "drain") == 0;
    if (!drain && strcmp(opts.scenario, "fg") != 0 && strcmp(opts.scenario, "pipe") != 0 &&
        !is_large()) {
        fail("the %s scenario has no worker side", opts.scenario);
    }
    long count = drain ? opts.n : opts.n + 1; /* the client's warm-up job first */
    struct window w;

    gearman_worker_st *worker = gearman_worker_create(NULL);
    if (worker == NULL) {
        fail("gearman_worker_create failed");
    }
    if (drain) {
        window_start(&w);
    }
    if (gearman_worker_add_server(worker, opts.host, opts.port) != GEARMAN_SUCCESS) {
        fail("gearman_worker_add_server: %s", gearman_worker_error(worker));
    }
    gearman_worker_set_timeout(worker, (int)(opts.timeout * 1000));
    if (gearman_worker_add_function(worker, function_name(), 0, answer, NULL) !=
        GEARMAN_SUCCESS) {
        fail("gearman_worker_add_function: %s", gearman_worker_error(worker));
    }
    for (long done = 1; done <= count; done++) {
        gearman_return_t ret = gearman_worker_work(worker);
        if (ret != GEARMAN_SUCCESS) {
            fail("gearman_worker_work: %s", gearman_worker_error(worker));
        }
        if (done == 1 && !drain) {
            window_start(&w);
        }
    }
    window_stop(&w);
    report(&w);
    gearman_worker_free(worker);
}

/* -------------------------------------------------------------------- main */

static void usage(const char *problem)
{
    fprintf(stderr,
            "usage: gmbench --role client|worker --scenario fg|pipe|bg|drain|large|fill\n"
            "               --n N --address host:port [--payload-size S] [--timeout SECONDS]\n");
    fail("bad arguments: %s", problem);
}

static long parse_long(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0) {
        usage(what);
    }
    return value;
}

static void parse_address(const char *address)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL || (size_t)(colon - address) >= sizeof opts.host) {
        usage("--address must be host:port");
    }
    memcpy(opts.host, address, (size_t)(colon - address));
    opts.host[colon - address] = '\0';
    long port = parse_long(colon + 1, "--address port");
    if (port < 1 || port > 65535) {
        usage("--address port out of range");
    }
    opts.port = (in_port_t)port;
}

int main(int argc, char **argv)
{
    opts.payload_size = sizeof SMALL_PAYLOAD - 1;
    opts.timeout = 300.0;
    opts.n = -1;
    const char *address = NULL;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc) {
            usage(flag);
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--role") == 0) {
            opts.role = value;
        } else if (strcmp(flag, "--scenario") == 0) {
            opts.scenario = value;
        } else if (strcmp(flag, "--n") == 0) {
            opts.n = parse_long(value, "--n");
        } else if (strcmp(flag, "--address") == 0) {
            address = value;
        } else if (strcmp(flag, "--payload-size") == 0) {
            opts.payload_size = (size_t)parse_long(value, "--payload-size");
        } else if (strcmp(flag, "--timeout") == 0) {
            opts.timeout = strtod(value, NULL);
        } else {
            usage(flag);
        }
    }
    if (opts.role == NULL || opts.scenario == NULL || address == NULL || opts.n < 1 ||
        opts.timeout <= 0) {
        usage("--role, --scenario, --address and --n >= 1 are required");
    }
    parse_address(address);

    signal(SIGALRM, on_alarm);
    alarm(opts.timeout < UINT_MAX ? (unsigned)opts.timeout + 1 : UINT_MAX);

    if (strcmp(opts.role, "client") == 0) {
        client_main();
    } else if (strcmp(opts.role, "worker") == 0) {
        worker_main();
    } else {
        usage("--role must be client or worker");
    }
    return 0;
}
