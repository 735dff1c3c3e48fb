/*
 * Standalone librdkafka mock cluster.
 *
 * Build: cc -o mockcluster mockcluster.c -lrdkafka   (Debian: librdkafka-dev)
 * Usage: mockcluster NUM_BROKERS MAX_SECONDS [API_KEY:MIN:MAX]...
 *
 * Creates a mock cluster (rd_kafka_mock_cluster_new) inside a producer handle
 * that never connects anywhere, prints the bootstrap address
 * ("127.0.0.1:PORT,...") on one line of stdout, and serves until SIGINT,
 * SIGTERM or MAX_SECONDS (a bound, so that an orphaned cluster always ends).
 * Each API_KEY:MIN:MAX caps the versions the mock brokers announce
 * (rd_kafka_mock_set_apiversion).
 * The same job as mockcluster.py, for when librdkafka's headers are installed;
 * kwire's conformance tests (tests/conform_engine.rs) build and run it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv) {
    int brokers = argc > 1 ? atoi(argv[1]) : 1;
    int lifetime = argc > 2 ? atoi(argv[2]) : 300;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers < 1 ? 1 : brokers);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        int key, vmin, vmax;
        if (sscanf(argv[i], "%d:%d:%d", &key, &vmin, &vmax) != 3) {
            fprintf(stderr, "bad API_KEY:MIN:MAX %s\n", argv[i]);
            return 1;
        }
        rd_kafka_mock_set_apiversion(mc, (int16_t)key, (int16_t)vmin, (int16_t)vmax);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    fprintf(stderr, "librdkafka %s\n", rd_kafka_version_str());
    time_t end = time(NULL) + (lifetime < 1 ? 1 : lifetime);
    while (!stop && time(NULL) < end)
        usleep(100 * 1000);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
