
#include <wgdp_shim.h>