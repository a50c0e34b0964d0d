/* Floor for the `hello` example: answer any request with "Hello, World". */
#include "floor.h"

int main(void) {
    if (floor_read_head() != 0)
        return 0;
    floor_respond(200, "Hello, World\n");
    return 0;
}
