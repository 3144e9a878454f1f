/* The floor of a cold start: an init that powers off at once. Same QEMU, same kernel, same
 * devices as a real run; everything gvmi-test adds on top is measured against this. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void) {
    reboot(RB_AUTOBOOT); /* with reboot=t and -no-reboot, QEMU exits */
    for (;;) pause();
}
