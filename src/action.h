/* --action-script (src/action.c): the user's script at the reference's stages. */
#ifndef CRYO_ACTION_H
#define CRYO_ACTION_H

#include <sys/types.h>

/* Run `script` (nothing if NULL) with CRTOOLS_SCRIPT_ACTION=stage, CRTOOLS_IMAGE_DIR
 * and, if pid > 0, CRTOOLS_INIT_PID; 0 if it exits 0, else -1 with the error set. */
int action_run(const char *script, const char *stage, const char *dir, pid_t pid);

#endif
