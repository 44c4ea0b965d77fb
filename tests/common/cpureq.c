/* tu_require_cpu: skips a test run meant for a SIMD level this CPU lacks. Linked only into the
 * tests that link lnx_base (the CPU detection is internal to the library). */
#include "testutil.h"

#include <stdlib.h>

#include "base/cpu.h"

void tu_require_cpu(void)
{
    const char *req = getenv("LLAVANEXT_TEST_REQUIRE_CPU");
    if (!req || !*req)
        return;
    unsigned want = (unsigned)strtoul(req, NULL, 0), have = lnx_cpu_flags();
    if ((have & want) == want)
        return;
    static const char *names[] = { "AVX2+FMA+F16C", "AVX-512 F/BW/VL", "AVX512-BF16", "AMX-BF16" };
    printf("SKIP: this CPU (or LLAVANEXT_CPU_MASK) lacks");
    for (int i = 0; i < 4; i++)
        if ((want & ~have) & (1u << i))
            printf(" %s", names[i]);
    printf(", which this run exercises\n");
    fflush(stdout);
    exit(77);
}
