/* A program outside the tree: built with `pkg-config --cflags --libs llavanext` against the
 * INSTALLED library and headers by install_test.sh. */
#include <stdio.h>
#include <string.h>

#include <llavanext/llavanext.h>

int main(void)
{
    printf("libllavanext %s (header %d.%d.%d, ABI %d)\n", llavanext_version(), LLAVANEXT_VERSION_MAJOR,
           LLAVANEXT_VERSION_MINOR, LLAVANEXT_VERSION_PATCH, LLAVANEXT_ABI_VERSION);
    if (llavanext_version_number() != LLAVANEXT_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header %d but library %d\n", LLAVANEXT_VERSION_NUMBER,
                (int)llavanext_version_number());
        return 1;
    }
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    if (p.struct_size != sizeof p || strcmp(llavanext_status_string(LLAVANEXT_OK), "unknown status") == 0)
        return 1;
    return 0;
}
