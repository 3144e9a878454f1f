/* Prints this host's TSC frequency in kHz, measured against CLOCK_MONOTONIC.
 *
 * Why: under TCG a guest's TSC is the host's (QEMU reads the host's counter for it), but the
 * guest kernel cannot measure its frequency (no HPET or PM timer on -M microvm, and its PIT
 * calibration fails whenever the vCPU is not scheduled on time), so it marks the TSC unstable and
 * keeps time with jiffies: 10 ms steps, and every tick the vCPU misses is lost, so a loaded host
 * leaves the guest clock behind. With this value on its command line (tsc_early_khz=) the guest
 * keeps time with the TSC at the host's rate.
 *
 * Prints nothing and exits 1 when the TSC does not tick at a constant rate (CPUID 0x80000007
 * EDX bit 8) or the measurements disagree. Runs on the host: x86-64 only. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define TRIALS 7
#define SPAN_NS 20000000 /* each trial: 20 ms between two readings */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A (time, TSC) pair: of 50 tries, the one whose two clock readings are closest around the TSC. */
static void pair(uint64_t *ns, uint64_t *tsc) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 50; i++) {
        uint64_t a = now_ns();
        uint64_t t = __rdtsc();
        uint64_t b = now_ns();
        if (b - a < best) {
            best = b - a;
            *ns = a + (b - a) / 2;
            *tsc = t;
        }
    }
}

static int compare(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 8))) return 1;
    double khz[TRIALS];
    for (int i = 0; i < TRIALS; i++) {
        uint64_t ns0, tsc0, ns1, tsc1;
        pair(&ns0, &tsc0);
        struct timespec span = {0, SPAN_NS};
        nanosleep(&span, NULL);
        pair(&ns1, &tsc1);
        khz[i] = (double)(tsc1 - tsc0) * 1e6 / (double)(ns1 - ns0);
    }
    qsort(khz, TRIALS, sizeof khz[0], compare);
    double median = khz[TRIALS / 2];
    /* The middle five within 50 ppm of each other, or the host was too busy to tell. */
    if (khz[TRIALS - 2] - khz[1] > median * 50e-6) return 1;
    printf("%.0f\n", median);
    return 0;
}
