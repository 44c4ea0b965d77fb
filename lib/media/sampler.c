/* placeholder: replaced by the module's implementation */
#include "../base/status.h"
